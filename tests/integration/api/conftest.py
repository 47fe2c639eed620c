"""Fixtures of the api tests; they and the helpers these tests share live in
tests/fixtures/api_ns.py (a conftest is not imported by tests)."""

from tests.fixtures.api_ns import api_ns

__all__ = ["api_ns"]
