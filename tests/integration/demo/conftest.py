"""Fixtures of the demo tests; they and the helpers these tests share live in
tests/fixtures/demo_system.py (a conftest is not imported by tests)."""

from tests.fixtures.demo_system import demo_system, tmux_factory

__all__ = ["demo_system", "tmux_factory"]
