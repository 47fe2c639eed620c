"""`minimal`: a subject plugin small enough to copy. The subject is a directory holding one
JSON file per member, `<directory>/<member>.json`, e.g. `{"up": true, "queue": 3}`; a member
without a file is Down. docs/writing-a-plugin.md walks through this file."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, ValidationError

from aiops.subjects import contract as c
from aiops.subjects.checks import evaluate_rules, members_down, over_threshold
from aiops.subjects.config import PluginConfig
from aiops.subjects.dispatch import DispatchingPlugin

MEMBER_DOWN, QUEUE_LONG, QUEUE = "member_down", "queue_long", "queue"
START_MEMBER, STOP_MEMBER = "start_member", "stop_member"
MARK = "aiops-chaos-stop_member"  # what stop_member leaves in a file: its revert undoes only that
CRITICAL, WARNING = c.Severity.CRITICAL, c.Severity.WARNING
UP, DOWN = c.MemberState.UP, c.MemberState.DOWN
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]


class MinimalConfig(PluginConfig):
    directory: str = Field(pattern="^/", description="Where the member files are: absolute.")
    members: list[Name] = Field(min_length=1, max_length=16, description="The member names.")


class MemberFile(BaseModel):
    up: bool
    queue: int = Field(default=0, ge=0)
    stopped_by: str = ""


class MemberParams(c.Frozen):
    member: Name = Field(description="The member to start.")


class MinimalPlugin(DispatchingPlugin):
    type_name = "minimal"
    config_model = MinimalConfig
    config: MinimalConfig  # the core validates spec.config against config_model first
    invariants = (
        c.Invariant(name=MEMBER_DOWN, description="Every member is up.", severity=CRITICAL),
        c.Invariant(
            name=QUEUE_LONG, description="No long queues.", severity=WARNING, threshold=100
        ),
    )
    actions = (
        c.ActionSpec(
            name=START_MEMBER,
            description="Mark a member up in its file.",
            params=MemberParams,
            risk=c.Risk.LOW,
            retry_safe=True,
            member_param="member",
        ),
    )
    faults = (
        c.FaultSpec(name=STOP_MEMBER, description="Mark the target down.", params=c.Frozen),  # none
    )
    runbook = (
        c.RunbookEntry(
            invariant=MEMBER_DOWN,
            diagnosis="Its file says down, or it has none.",
            likely_causes=["it was stopped", "its file was removed"],
            steps=[c.RunbookStep(action=START_MEMBER, params={"member": "{entity}"})],
        ),
    )

    def _path(self, member: str) -> Path:
        if member not in self.config.members:  # only configured names ever become a path
            raise c.PluginError(f"{member!r} is not a member ({', '.join(self.config.members)})")
        return Path(self.config.directory, f"{member}.json")

    def _read(self, member: str) -> MemberFile | None:
        """The member's file; None when there is none, or it is not one (the member is Down)."""
        try:
            return MemberFile.model_validate_json(self._path(member).read_bytes())
        except (OSError, ValidationError):
            return None

    def _write(self, member: str, **changes: object) -> None:
        now, path = self._read(member) or MemberFile(up=False), self._path(member)
        path.with_suffix(".tmp").write_text(now.model_copy(update=changes).model_dump_json())
        os.replace(path.with_suffix(".tmp"), path)  # a reader never sees half a file

    def _observe(self) -> c.Observation:
        if not Path(self.config.directory).is_dir():  # raise: the Subject shows Unknown
            raise c.PluginError(f"{self.config.directory} is not a directory")
        members, queues = [], {}
        for name in self.config.members:
            file = self._read(name)
            up = file is not None and file.up
            why = "" if up else "its file says down" if file else "no readable file"
            members.append(c.Member(name=name, state=UP if up else DOWN, message=why))
            if file:
                queues[name] = float(file.queue)
        return c.Observation(members=members, metrics={QUEUE: queues})

    async def observe(self) -> c.Observation:
        return await asyncio.to_thread(self._observe)  # file I/O off the operator's event loop

    def evaluate(self, obs: c.Observation, invariants: dict[str, c.Invariant]) -> list[c.Violation]:
        return evaluate_rules(obs, invariants, {MEMBER_DOWN: member_down, QUEUE_LONG: queue_long})

    async def preconditions(self, action: str, params: BaseModel, obs: c.Observation) -> list[str]:
        assert isinstance(params, MemberParams)  # the gate validated it against the spec
        if params.member not in self.config.members:
            return [f"{params.member} is not a member"]
        file = await asyncio.to_thread(self._read, params.member)  # live: `obs` may be old
        return [f"{params.member} is up: nothing to start"] if file and file.up else []

    async def act_start_member(self, p: MemberParams, key: str) -> c.ActionResult:
        await asyncio.to_thread(
            self._write, p.member, up=True, stopped_by=""
        )  # a retry writes the same
        return c.ActionResult(ok=True, message=f"member {p.member} is up")

    async def inject_stop_member(self, p: c.Frozen, member: str) -> c.ActionResult:
        await asyncio.to_thread(self._write, member, up=False, stopped_by=MARK)
        return c.ActionResult(ok=True, message=f"member {member} is down")

    async def revert_stop_member(self, p: c.Frozen, member: str) -> c.ActionResult:
        file = await asyncio.to_thread(self._read, member)
        if file is None or file.stopped_by != MARK:  # started since, or not ours: left as is
            return c.ActionResult(ok=True, message=f"{member} has no {STOP_MEMBER} mark: left")
        await asyncio.to_thread(self._write, member, up=True, stopped_by="")
        return c.ActionResult(ok=True, message=f"member {member} is up again")


def member_down(obs: c.Observation, inv: c.Invariant) -> list[c.Violation]:
    return members_down(
        obs, inv, summary=lambda m: f"{m.name} is down: {m.message}", evidence=lambda m: m.message
    )


def queue_long(obs: c.Observation, inv: c.Invariant) -> list[c.Violation]:
    return over_threshold(
        obs, inv, QUEUE, default=100, summary=lambda m, n, cap: f"{m}: {n:.0f} queued (> {cap:.0f})"
    )
