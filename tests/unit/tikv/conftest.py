"""Fixtures of the tikv tests; they and the helpers these tests share live in
tests/fixtures/tikv_plugin.py and tests/fixtures/pd_standin.py (a conftest is not imported by
tests)."""

from tests.fixtures.pd_standin import pd_standin
from tests.fixtures.tikv_plugin import _prom_server, make_plugin, prom

__all__ = ["_prom_server", "make_plugin", "pd_standin", "prom"]
