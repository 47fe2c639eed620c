"""The whole local system behind `aiops up | down | status` and `aiops demo`.

`layout` is light (the CLI imports it at start); `system` brings in the stack's modules."""

from aiops.localsystem.layout import Layout, LocalSystemError, Record, load_record

__all__ = ["Layout", "LocalSystemError", "Record", "load_record"]
