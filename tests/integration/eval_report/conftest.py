"""Fixtures of the report's browser test; they live in tests/fixtures/browser.py (a conftest
is not imported by tests)."""

from tests.fixtures.browser import chromium

__all__ = ["chromium"]
