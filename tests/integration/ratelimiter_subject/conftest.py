"""Fixtures of the ratelimiter_subject tests; they and the helpers these tests share live in
tests/fixtures/ratelimiter_subject.py (a conftest is not imported by tests)."""

from tests.fixtures.ratelimiter_subject import rl_env

__all__ = ["rl_env"]
