"""Every action the operator can run, in one registry: the core's (offered on every Subject,
`CORE`) and the Subject plugin's own. The gate looks actions up here and the incident loop
runs, dry-runs and undoes them here, so no other code names a particular action.

A core action name shadows a plugin's action of the same name: the core's checks (kubectl's
allowlist) cannot be replaced by a plugin.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from aiops.actions.core import CoreAction, Where
from aiops.actions.kubectl import KUBECTL
from aiops.subjects.contract import ActionResult, ActionSpec, PluginError, SubjectPlugin

CORE: Mapping[str, CoreAction] = {a.spec.name: a for a in (KUBECTL,)}

Plugin = SubjectPlugin | type[SubjectPlugin]


def _cls(plugin: Plugin) -> type[SubjectPlugin]:
    return plugin if isinstance(plugin, type) else type(plugin)


def is_core(name: str) -> bool:
    return name in CORE


def find_action(plugin: Plugin, name: str) -> ActionSpec | None:
    """The action `name` on a Subject of this plugin, or None when there is none."""
    if name in CORE:
        return CORE[name].spec
    try:
        return _cls(plugin).action(name)
    except PluginError:
        return None


def action_specs(plugin: Plugin) -> list[ActionSpec]:
    """Every action on a Subject of this plugin: the plugin's, then the core's."""
    return [*_cls(plugin).actions, *(a.spec for a in CORE.values())]


def action_names(plugin: Plugin) -> list[str]:
    return [a.name for a in action_specs(plugin)]


async def execute(
    plugin: SubjectPlugin, name: str, params: BaseModel, key: str, where: Where
) -> ActionResult:
    """Runs one action the gate let run (`params` as the gate validated them). `key` is its
    idempotency key, `where` the Subject's namespace (and the operator's kubectl)."""
    core = CORE.get(name)
    if core is not None:
        return await core.run(params, where)
    return await plugin.execute(name, params, key)


async def dry_run(name: str, params: BaseModel, where: Where) -> ActionResult | None:
    """The real dry run of an action, where the API it changes has one (Kubernetes); None
    where it has none (the gate's checks on live state are then the closest thing)."""
    core = CORE.get(name)
    if core is None or core.dry_run is None:
        return None
    return await core.dry_run(params, where)


async def undo(plugin: SubjectPlugin, name: str, params: BaseModel, key: str) -> ActionResult:
    """Reverts an action that ran; only a reversible one is ever undone."""
    if name in CORE:
        return ActionResult(ok=False, message=f"{name} is a core action and cannot be undone")
    return await plugin.undo(name, params, key)


async def release(plugin: SubjectPlugin, name: str, params: BaseModel, key: str) -> ActionResult:
    """Releases what an action interrupted by a restart held while it ran (`SubjectPlugin.
    release`); a core action holds nothing between its calls."""
    if name in CORE:
        return ActionResult(ok=True, message=f"{name} holds nothing to release")
    return await plugin.release(name, params, key)
