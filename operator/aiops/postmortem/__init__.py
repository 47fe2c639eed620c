"""A postmortem draft from an Incident's status and its audit log (`aiops postmortem`)."""

from aiops.postmortem.render import SECTIONS, Sources, render

__all__ = ["SECTIONS", "Sources", "render"]
