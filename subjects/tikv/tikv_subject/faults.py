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

from pydantic import BaseModel, Field

from aiops.subjects.context import PluginContext
from aiops.subjects.contract import ActionResult, FaultSpec, PluginError
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
        "it Disconnected, then Down; revert sends SIGCONT. Pods workloads refuse it.",
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
        description="Add an evict-leader scheduler for the target store that no action owns.",
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


async def inject(runner: Runner, ctx: PluginContext, fault: str, params: BaseModel,
                 target: str) -> ActionResult:
    sid = _store_id(target)
    if fault == LEAVE_EVICT_LEADER:
        await runner.pd.add_evict_leader(sid)
        return ActionResult(ok=True, message=f"left an evict-leader scheduler on {store_name(sid)}")
    workload = _workload(ctx, fault)
    member = await _member(runner, sid)
    if fault == KILL_STORE:
        return await workload.kill(member)
    if fault == PAUSE_STORE:
        return await workload.pause(member)
    if fault == PARTITION_STORE and isinstance(params, PartitionParams):
        return await workload.partition(member, netpolicy.policy_name(fault, member),
                                        params.direction)
    if fault == FILL_STORE_DISK and isinstance(params, FillParams):
        return await workload.fill_disk(member, _data_dir(runner, member), params,
                                        runner.cfg.store_container)
    if fault == STORE_LATENCY and isinstance(params, DelayParams):
        device = runner.cfg.network_device
        await _run(workload, member, netem.add_argv(device, params), runner)
        jitter = f" ± {params.jitter_ms} ms" if params.jitter_ms else ""
        return ActionResult(ok=True, message=f"every packet {store_name(sid)} sends on "
                            f"{device} is delayed {params.latency_ms} ms{jitter} (netem, "
                            f"handle {netem.HANDLE} in pod {member})")
    raise PluginError(f"tikv has no fault {fault!r} taking {type(params).__name__}")


async def revert(runner: Runner, ctx: PluginContext, fault: str, params: BaseModel,
                 target: str) -> ActionResult:
    sid = _store_id(target)
    if fault == LEAVE_EVICT_LEADER:
        removed = await runner.pd.remove_evict_leader(sid)
        return ActionResult(ok=True, message=f"evict-leader scheduler on {store_name(sid)} "
                            + ("removed" if removed else "was already gone"))
    workload = _workload(ctx, fault)
    member = await _member(runner, sid)
    if fault == KILL_STORE:
        return await workload.start(member)
    if fault == PAUSE_STORE:
        return await workload.resume(member)
    if fault == PARTITION_STORE:
        return await workload.heal(member, netpolicy.policy_name(fault, member))
    if fault == FILL_STORE_DISK:
        return await workload.unfill_disk(member, _data_dir(runner, member),
                                          runner.cfg.store_container)
    if fault == STORE_LATENCY:
        device = runner.cfg.network_device
        shown = await _run(workload, member, netem.show_argv(device), runner)
        if not netem.ours(shown):
            return ActionResult(ok=True, message=f"no netem qdisc {netem.HANDLE} on {device} "
                                f"in pod {member}: nothing to remove")
        await _run(workload, member, netem.del_argv(device), runner)
        return ActionResult(ok=True, message=f"netem qdisc {netem.HANDLE} removed from "
                            f"{device} in pod {member}")
    raise PluginError(f"tikv has no fault {fault!r}")


def _workload(ctx: PluginContext, fault: str) -> Workload:
    if ctx.workload is None:
        raise PluginError(f"the Subject has no workload (spec.workload): cannot run {fault}")
    return ctx.workload


async def _member(runner: Runner, sid: int) -> str:
    """The workload member of a store PD knows. A store that is Down is still known (only
    Tombstone and gone stores are not), so reverts find theirs."""
    info = (await runner.live_stores()).get(sid)
    if info is None:
        raise PluginError(f"{store_name(sid)} is not a store of this cluster")
    return runner.member_of(info.store)


def _data_dir(runner: Runner, member: str) -> str:
    path = runner.cfg.data_dir_of(member)
    if path is None:
        raise PluginError(f"dataDir {runner.cfg.data_dir!r} with member {member!r} is not a "
                          "plain absolute path")
    return path


async def _run(workload: Workload, member: str, argv: list[str], runner: Runner) -> str:
    done = await workload.exec(member, argv, runner.cfg.store_container)
    if done.rc != 0:
        raise PluginError(f"{' '.join(argv[:3])} in {member} failed (exit {done.rc}): "
                          f"{done.why()}")
    return done.stdout
