"""Fixtures of the subjects tests; they and the helpers these tests share live in
tests/fixtures/subject_loop.py (a conftest is not imported by tests)."""

from tests.fixtures.subject_loop import ns

__all__ = ["ns"]
