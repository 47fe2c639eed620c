"""Actions and faults by name. A plugin declares what it offers (`ActionSpec`, `FaultSpec`) and
maps each name to the method that does it; `Dispatch` is that map, checked:

- when the plugin is built, every declared name has a method and every method a declared
  name (a fault declared and never written is found when the Subject binds, not when a Chaos
  first names it);
- on each call, the parameters are of the spec's own model (what the gate and the Chaos loop
  validated), so a method receives its typed parameters and needs no isinstance of its own;
- an unknown name is a `PluginError`, never a method looked up by a name from outside.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from aiops.subjects.context import PluginContext
from aiops.subjects.contract import ActionResult, ActionSpec, FaultSpec, PluginError, SubjectPlugin

Handler = Callable[[Any, str], Awaitable[ActionResult]]
"""`(params, arg)`: `arg` is the idempotency key for an action, the target for a fault."""


class Dispatch:
    def __init__(
        self,
        owner: str,
        kind: str,
        specs: Iterable[ActionSpec | FaultSpec],
        handlers: Mapping[str, Handler],
    ) -> None:
        """`owner` and `kind` name what refuses in messages ("tikv", "fault")."""
        self.owner, self.kind = owner, kind
        self._specs = {s.name: s for s in specs}
        self._handlers = dict(handlers)
        missing = sorted(set(self._specs) - set(self._handlers))
        extra = sorted(set(self._handlers) - set(self._specs))
        if missing or extra:
            raise PluginError(
                f"{owner}: every {kind} needs exactly one method"
                + (f"; declared without one: {', '.join(missing)}" if missing else "")
                + (f"; a method for nothing declared: {', '.join(extra)}" if extra else "")
            )

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    async def __call__(self, name: str, params: BaseModel, arg: str) -> ActionResult:
        spec = self._specs.get(name)
        if spec is None or not isinstance(params, spec.params):
            raise PluginError(
                f"{self.owner} has no {self.kind} {name!r} taking {type(params).__name__}"
            )
        return await self._handlers[name](params, arg)


# Method prefix → what it does, as messages call it.
_PREFIXES = {
    "act_": "action",
    "undo_": "reversible action",
    "inject_": "fault",
    "revert_": "fault",
}


class DispatchingPlugin(SubjectPlugin):
    """A plugin whose actions and faults are its own methods, found by name: `act_<action>`
    for `execute`, `undo_<action>` for each reversible action, `inject_<fault>` and
    `revert_<fault>` for each fault, each taking `(params, key or target)`. A declared name
    without its method, or such a method for nothing declared, fails the plugin's creation
    (the Subject's Ready condition says PluginBroken)."""

    def __init__(self, config: BaseModel, ctx: PluginContext) -> None:
        super().__init__(config, ctx)
        self._dispatch = {prefix: self._table(prefix) for prefix in _PREFIXES}

    def _table(self, prefix: str) -> Dispatch:
        specs: tuple[ActionSpec | FaultSpec, ...] = self.faults
        if prefix == "act_":
            specs = self.actions
        elif prefix == "undo_":
            specs = tuple(a for a in self.actions if a.reversible)
        names = [n.removeprefix(prefix) for n in dir(self) if n.startswith(prefix)]
        handlers = {n: getattr(self, prefix + n) for n in names}
        return Dispatch(self.type_name, _PREFIXES[prefix], specs, handlers)

    async def execute(self, action: str, params: BaseModel, key: str) -> ActionResult:
        return await self._dispatch["act_"](action, params, key)

    async def undo(self, action: str, params: BaseModel, key: str) -> ActionResult:
        return await self._dispatch["undo_"](action, params, key)

    async def inject(self, fault: str, params: BaseModel, target: str) -> ActionResult:
        return await self._dispatch["inject_"](fault, params, target)

    async def revert(self, fault: str, params: BaseModel, target: str) -> ActionResult:
        return await self._dispatch["revert_"](fault, params, target)
