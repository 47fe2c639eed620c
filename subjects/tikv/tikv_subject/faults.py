"""Faults for Chaos resources: a store killed, paused or cut off from its peers through the
workload, its data directory filled (the original evaluation's fallocate), delay added to
everything it sends (its netem), and an evict-leader scheduler left behind (what the
original system did by accident, made on purpose to show that it is now noticed and cleared).

Disk fill and latency run commands in the store's pod (exec), so they are written for pods
workloads; the fill also runs under supervisord, on a local data directory. Every revert
finds what its fault made by name (the file aiops-chaos-fill, the netem qdisc's handle, the
NetworkPolicy aiops-chaos-<fault>-<pod>, the store's scheduler), so it needs no memory of the
injection and repeating it is a no-op that says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from aiops.subjects.context import PluginContext
from aiops.subjects.contract import ActionResult, FaultSpec, PluginError
from aiops.subjects.dispatch import Dispatch, Handler
from aiops.subjects.faults import netem, netpolicy
from aiops.subjects.faults.delay import DelayParams
from aiops.subjects.faults.diskfill import FillParams
from aiops.subjects.workload import Workload
from tikv_subject.actions import Params, Runner
from tikv_subject.stores import parse_store_id, store_name

KILL_STORE = "kill_store"
PAUSE_STORE = "pause_store"
PARTITION_STORE = "partition_store"
FILL_STORE_DISK = "fill_store_disk"
STORE_LATENCY = "store_latency"
LEAVE_EVICT_LEADER = "leave_evict_leader"


class NoParams(Params):
    """The fault takes its target only."""


class PartitionParams(Params):
    direction: netpolicy.Direction = Field(
        default="both", description="Traffic cut: both, ingress (to the store) or egress."
    )


class StoreLatencyParams(DelayParams):
    """Every packet the store sends is delayed by latency_ms (± jitter_ms)."""


FAULTS: tuple[FaultSpec, ...] = (
    FaultSpec(
        name=KILL_STORE,
        description="Stop the target store's process through the workload (pods: the pod is "
        "deleted and its controller makes another, an instant fault; supervisord: it stays "
        "down until revert starts it).",
        params=NoParams,
    ),
    FaultSpec(
        name=PAUSE_STORE,
        description="Freeze the target store's process with SIGSTOP (supervisord): PD sees "
        "it Disconnected, then Down; revert sends SIGCONT. Pods: only with "
        "spec.shareProcessNamespace.",
        params=NoParams,
    ),
    FaultSpec(
        name=PARTITION_STORE,
        description="Cut the target store's pod off from every other pod (PD and its peers) "
        "by a NetworkPolicy (pods workloads only); revert deletes the policy.",
        params=PartitionParams,
    ),
    FaultSpec(
        name=FILL_STORE_DISK,
        description="Fill the target store's data directory (dataDir) to a percentage with "
        "one file, aiops-chaos-fill (fallocate in the pod); revert removes it.",
        params=FillParams,
    ),
    FaultSpec(
        name=STORE_LATENCY,
        description="Delay every packet the target store sends by a netem qdisc on its pod's "
        "networkDevice (tc in the pod: needs iproute2 and NET_ADMIN); revert deletes it.",
        params=StoreLatencyParams,
    ),
    FaultSpec(
        name=LEAVE_EVICT_LEADER,
        description="Add an evict-leader scheduler for the target store that this operator "
        "did not add: to it a person's, so the incident escalates (remove_any_evict_leader "
        "removes it with an Approval).",
        params=NoParams,
    ),
)


def _store_id(target: str) -> int:
    try:
        sid = parse_store_id(target)
    except ValueError as err:
        raise PluginError(str(err)) from err
    if not isinstance(sid, int) or sid <= 0:
        raise PluginError(f"not a store: {target!r}")
    return int(sid)


@dataclass(frozen=True)
class Store:
    """A fault's target store, and the workload member (pod, program) that runs it."""

    sid: int
    member: str
    workload: Workload


class Faults:
    """`inject` and `revert` by fault name, side by side. Every fault but leave_evict_leader
    acts on the workload member that runs the target store."""

    def __init__(self, runner: Runner, ctx: PluginContext) -> None:
        self.runner, self.ctx, container = runner, ctx, runner.cfg.store_container
        on = self._on_store
        self.inject = Dispatch(
            "tikv",
            "fault",
            FAULTS,
            {
                KILL_STORE: on(KILL_STORE, lambda s, _: s.workload.kill(s.member)),
                PAUSE_STORE: on(PAUSE_STORE, lambda s, _: s.workload.pause(s.member)),
                PARTITION_STORE: on(
                    PARTITION_STORE,
                    lambda s, p: s.workload.partition(
                        s.member, netpolicy.policy_name(PARTITION_STORE, s.member), p.direction
                    ),
                ),
                FILL_STORE_DISK: on(
                    FILL_STORE_DISK,
                    lambda s, p: s.workload.fill_disk(
                        s.member, self._data_dir(s.member), p, container
                    ),
                ),
                STORE_LATENCY: on(STORE_LATENCY, self._add_netem),
                LEAVE_EVICT_LEADER: self._leave_evict_leader,
            },
        )
        self.revert = Dispatch(
            "tikv",
            "fault",
            FAULTS,
            {
                KILL_STORE: on(KILL_STORE, lambda s, _: s.workload.start(s.member)),
                PAUSE_STORE: on(PAUSE_STORE, lambda s, _: s.workload.resume(s.member)),
                PARTITION_STORE: on(
                    PARTITION_STORE,
                    lambda s, _: s.workload.heal(
                        s.member, netpolicy.policy_name(PARTITION_STORE, s.member)
                    ),
                ),
                FILL_STORE_DISK: on(
                    FILL_STORE_DISK,
                    lambda s, _: s.workload.unfill_disk(
                        s.member, self._data_dir(s.member), container
                    ),
                ),
                STORE_LATENCY: on(STORE_LATENCY, self._remove_netem),
                LEAVE_EVICT_LEADER: self._remove_evict_leader,
            },
        )

    def _on_store(
        self, fault: str, step: Callable[[Store, Any], Awaitable[ActionResult]]
    ) -> Handler:
        async def run(params: Any, target: str) -> ActionResult:
            sid = _store_id(target)
            if self.ctx.workload is None:
                raise PluginError(
                    f"the Subject has no workload (spec.workload): cannot run {fault}"
                )
            return await step(Store(sid, await self._member(sid), self.ctx.workload), params)

        return run

    async def _leave_evict_leader(self, _: NoParams, target: str) -> ActionResult:
        sid = _store_id(target)
        await self.runner.pd.add_evict_leader(sid)
        return ActionResult(ok=True, message=f"left an evict-leader scheduler on {store_name(sid)}")

    async def _remove_evict_leader(self, _: NoParams, target: str) -> ActionResult:
        sid = _store_id(target)
        removed = await self.runner.pd.remove_evict_leader(sid)
        return ActionResult(
            ok=True,
            message=f"evict-leader scheduler on {store_name(sid)} "
            + ("removed" if removed else "was already gone"),
        )

    async def _add_netem(self, s: Store, p: DelayParams) -> ActionResult:
        device = self.runner.cfg.network_device
        await self._run(s, netem.add_argv(device, p))
        jitter = f" ± {p.jitter_ms} ms" if p.jitter_ms else ""
        return ActionResult(
            ok=True,
            message=f"every packet {store_name(s.sid)} sends on "
            f"{device} is delayed {p.latency_ms} ms{jitter} (netem, handle "
            f"{netem.HANDLE} in pod {s.member})",
        )

    async def _remove_netem(self, s: Store, _: DelayParams) -> ActionResult:
        device = self.runner.cfg.network_device
        if not netem.ours(await self._run(s, netem.show_argv(device))):
            return ActionResult(
                ok=True,
                message=f"no netem qdisc {netem.HANDLE} on {device} "
                f"in pod {s.member}: nothing to remove",
            )
        await self._run(s, netem.del_argv(device))
        return ActionResult(
            ok=True, message=f"netem qdisc {netem.HANDLE} removed from {device} in pod {s.member}"
        )

    async def _member(self, sid: int) -> str:
        """The workload member of a store PD knows. A store that is Down is still known (only
        Tombstone and gone stores are not), so reverts find theirs."""
        info = (await self.runner.live_stores()).get(sid)
        if info is None:
            raise PluginError(f"{store_name(sid)} is not a store of this cluster")
        return self.runner.member_of(info.store)

    def _data_dir(self, member: str) -> str:
        path = self.runner.cfg.data_dir_of(member)
        if path is None:
            raise PluginError(
                f"dataDir {self.runner.cfg.data_dir!r} with member {member!r} is "
                "not a plain absolute path"
            )
        return path

    async def _run(self, s: Store, argv: list[str]) -> str:
        done = await s.workload.exec(s.member, argv, self.runner.cfg.store_container)
        if done.rc != 0:
            raise PluginError(
                f"{' '.join(argv[:3])} in {s.member} failed (exit {done.rc}): {done.why()}"
            )
        return done.stdout
