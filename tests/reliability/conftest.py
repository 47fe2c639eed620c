"""Fixtures of the reliability suite; they live in tests/fixtures/ (a conftest is not imported
by tests)."""

from tests.fixtures.private_cluster import private_cluster

__all__ = ["private_cluster"]
