"""Fixtures of the eval tests; they and the helpers these tests share live in
tests/fixtures/eval_env.py (a conftest is not imported by tests)."""

from tests.fixtures.eval_env import eval_env

__all__ = ["eval_env"]
