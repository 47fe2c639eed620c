"""Fixtures of the notification tests; they live in tests/fixtures/notify_env.py."""

from tests.fixtures.notify_env import notify_env

__all__ = ["notify_env"]
