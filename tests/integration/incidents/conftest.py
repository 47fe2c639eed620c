"""Fixtures of the incidents tests; they and the helpers these tests share live in
tests/fixtures/incident_loop.py (a conftest is not imported by tests)."""

from tests.fixtures.incident_loop import loop_env

__all__ = ["loop_env"]
