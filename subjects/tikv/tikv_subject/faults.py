"""Faults for Chaos resources: a store killed through the workload, and an evict-leader
scheduler left behind (what the original system did by accident, made on purpose to show
that it is now noticed and cleared)."""

from __future__ import annotations

from aiops.subjects.context import PluginContext
from aiops.subjects.contract import ActionResult, FaultSpec, PluginError
from tikv_subject.actions import Params, Runner
from tikv_subject.stores import parse_store_id, store_name

KILL_STORE = "kill_store"
LEAVE_EVICT_LEADER = "leave_evict_leader"


class NoParams(Params):
    """Faults here take their target only."""


FAULTS: tuple[FaultSpec, ...] = (
    FaultSpec(
        name=KILL_STORE,
        description="Stop the target store's process through the workload (with pods the "
        "controller brings it back; under supervisord it stays down until revert).",
        params=NoParams,
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


async def inject(runner: Runner, ctx: PluginContext, fault: str, target: str) -> ActionResult:
    sid = _store_id(target)
    if fault == LEAVE_EVICT_LEADER:
        await runner.pd.add_evict_leader(sid)
        return ActionResult(ok=True, message=f"left an evict-leader scheduler on {store_name(sid)}")
    if fault == KILL_STORE:
        return await _workload_call(runner, ctx, sid, stop=True)
    raise PluginError(f"tikv has no fault {fault!r}")


async def revert(runner: Runner, ctx: PluginContext, fault: str, target: str) -> ActionResult:
    sid = _store_id(target)
    if fault == LEAVE_EVICT_LEADER:
        removed = await runner.pd.remove_evict_leader(sid)
        return ActionResult(ok=True, message=f"evict-leader scheduler on {store_name(sid)} "
                            + ("removed" if removed else "was already gone"))
    if fault == KILL_STORE:
        return await _workload_call(runner, ctx, sid, stop=False)
    raise PluginError(f"tikv has no fault {fault!r}")


async def _workload_call(runner: Runner, ctx: PluginContext, sid: int, stop: bool) -> ActionResult:
    if ctx.workload is None:
        raise PluginError("the Subject has no workload (spec.workload): cannot stop a store")
    info = (await runner.live_stores()).get(sid)
    if info is None:
        raise PluginError(f"{store_name(sid)} is not a store of this cluster")
    member = runner.member_of(info.store)
    return await (ctx.workload.stop(member) if stop else ctx.workload.start(member))
