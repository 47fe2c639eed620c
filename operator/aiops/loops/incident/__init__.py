"""The incident loop's state machine: `machine.py` is the table (phase, handler, next
phases), `phases/` has one module per phase, `driver.py` the plumbing they share, `status.py`
the status writer, `approvals.py` what makes an Approval match a step. The kopf daemon that
steps each open Incident is `aiops.loops.incidents`."""

from aiops.loops.incident.driver import IncidentDriver

__all__ = ["IncidentDriver"]
