"""Everything `aiops operator run` registers with kopf: import this module, get every loop."""

from aiops.loops import chaos, incidents, startup, subjects

__all__ = ["chaos", "incidents", "startup", "subjects"]
