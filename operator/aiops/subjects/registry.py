"""Finds subject plugins through the `aiops.subjects` entry-point group (the core imports no
plugin by name), and turns a Subject's `spec.config` into the plugin's validated config."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from aiops.subjects.contract import SubjectPlugin

GROUP = "aiops.subjects"


class UnknownSubjectType(LookupError):
    pass


class InvalidConfig(ValueError):
    pass


def available() -> dict[str, str]:
    """Type name → the entry point's target, for messages and `aiops` listings."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def load(type_name: str) -> type[SubjectPlugin]:
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == type_name]
    if not matches:
        known = ", ".join(sorted(available())) or "none installed"
        raise UnknownSubjectType(f"unknown subject type {type_name!r} (known: {known})")
    plugin = matches[0].load()
    if not (isinstance(plugin, type) and issubclass(plugin, SubjectPlugin)):
        raise UnknownSubjectType(
            f"entry point {type_name!r} ({matches[0].value}) is not a SubjectPlugin"
        )
    return plugin


def validate_config(plugin: type[SubjectPlugin], raw: dict[str, Any] | None) -> BaseModel:
    try:
        return plugin.config_model.model_validate(raw or {})
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(config)'}: {e['msg']}" for e in err.errors()
        )
        raise InvalidConfig(f"spec.config rejected by {plugin.type_name}: {problems}") from err
