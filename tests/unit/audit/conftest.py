"""Fixtures of the audit tests; they and the helpers these tests share live in
tests/fixtures/audit_log.py (a conftest is not imported by tests)."""

from tests.fixtures.audit_log import log, sample

__all__ = ["log", "sample"]
