"""Everything `aiops operator run` registers with kopf: import this module, get every loop."""

from aiops.loops import incidents, startup, subjects

__all__ = ["incidents", "startup", "subjects"]
