"""Everything `aiops operator run` registers with kopf: import this module, get every loop."""

from aiops.loops import startup, subjects

__all__ = ["startup", "subjects"]
