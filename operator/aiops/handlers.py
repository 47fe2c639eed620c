"""Everything `aiops operator run` registers with kopf: import this module, get every loop."""

from aiops.loops import chaos, incidents, metering, peering, startup, subjects
from aiops.notify import handlers as notify

__all__ = ["chaos", "incidents", "metering", "notify", "peering", "startup", "subjects"]
