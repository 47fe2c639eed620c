"""Fixtures of the chaos tests; they and the helpers these tests share live in
tests/fixtures/chaos_env.py (a conftest is not imported by tests)."""

from tests.fixtures.chaos_env import chaos_env, fixing_env

__all__ = ["chaos_env", "fixing_env"]
