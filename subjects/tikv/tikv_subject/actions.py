"""The remediations, their live preconditions, and how each runs.

Safety rules kept here, not left to callers:
- No store is touched while another store is down (PD: Disconnected or Down).
- An evict-leader scheduler this code adds is removed on every exit path that does not hand it
  to its owner (failure, timeout, cancellation): try/except around everything after the claim.
- Ownership outlives the process: the incident records the action (with its idempotency key)
  as Running before it is sent, and `owners` reads those records (`PluginContext.records`)
  when the in-memory ledger knows nothing. So after a SIGKILL, the re-sent `evict_leader`
  recognises its own scheduler, and `release` (an interrupted action not sent again) removes
  it. One that survives anyway is reported by `evict_leader_leftover`.
- Only this operator's own scheduler is removed without a person: `remove_evict_leader`
  (low risk) refuses one it did not add; `remove_any_evict_leader` (high risk: always an
  Approval) removes anyone's.
- restart_store refuses when restarting the store would leave a region without a quorum.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from aiops.subjects.context import PluginContext
from aiops.subjects.contract import (
    ActionRecord,
    ActionResult,
    ActionSpec,
    Frozen,
    MemberState,
    Outcome,
    PluginError,
    Risk,
    utcnow,
)
from aiops.subjects.dispatch import Dispatch
from aiops.subjects.memo import BoundedMemo, once
from tikv_subject.config import TikvConfig
from tikv_subject.ledger import LEDGER, Ownership
from tikv_subject.pd import REGION_CHECKS, PdClient, SchedulerExisted
from tikv_subject.pd_models import MetaStore, RegionInfo, StoreInfo
from tikv_subject.stores import StoreId, condition, member_state, parse_store_id, store_name

EVICT_LEADER = "evict_leader"
REMOVE_EVICT_LEADER = "remove_evict_leader"
REMOVE_ANY_EVICT_LEADER = "remove_any_evict_leader"
TRANSFER_LEADER = "transfer_leader"
RESTART_STORE = "restart_store"
# Said when a failure path could not remove its own scheduler: the record still makes it ours.
CLEANUP_FAILED = "removing its evict-leader scheduler failed too"


def _as_store_name(value: Any) -> str:
    sid = parse_store_id(value)
    if isinstance(sid, int) and not isinstance(sid, bool) and sid > 0:
        return store_name(sid)
    raise ValueError(f"not a store: {str(value)[:40]!r} (expected store-<id> or an id)")


# A store as the member it is: "store-<id>" (observations name members so), whatever the
# proposal said (3, "3", "store-3"), so the gate's blast radius can compare it (member_param).
StoreName = Annotated[str, BeforeValidator(_as_store_name)]


def store_id_of(name: str) -> int:
    return int(name.removeprefix("store-"))


class Params(Frozen):
    """Action parameters: immutable, and unknown fields are a mistake worth reporting."""


class StoreParams(Params):
    store: StoreName = Field(description="The store: store-<id> or its id.")

    @property
    def store_id(self) -> int:
        return store_id_of(self.store)


class EvictLeaderParams(StoreParams):
    keep_for_seconds: int = Field(
        default=900,
        ge=60,
        le=3600,
        description="How long the eviction is owned by this action; past it, an eviction "
        "still in place is reported as a leftover.",
    )


class TransferLeaderParams(Params):
    region_id: int = Field(gt=0, description="The region whose leader moves.")
    to_store: StoreId = Field(description="The store that gets the leader.")


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name=EVICT_LEADER,
        description="Move every Raft leader off a store (PD's evict-leader scheduler) and wait "
        "until it holds none, so a slow store stops serving reads and writes; undo removes it.",
        params=EvictLeaderParams,
        risk=Risk.MEDIUM,
        reversible=True,
        retry_safe=True,
        member_param="store",
    ),
    ActionSpec(
        name=REMOVE_EVICT_LEADER,
        description="Remove a store's evict-leader scheduler that this operator added (one whose "
        "owner let it lapse, or left behind) so leaders may return to it; refused for one it "
        "did not add.",
        params=StoreParams,
        risk=Risk.LOW,
        retry_safe=True,
        member_param="store",
    ),
    ActionSpec(
        name=REMOVE_ANY_EVICT_LEADER,
        description="Remove a store's evict-leader scheduler whoever added it: a person may "
        "have added it on purpose (maintenance), so it always waits for an Approval.",
        params=StoreParams,
        risk=Risk.HIGH,
        retry_safe=True,
        member_param="store",
    ),
    ActionSpec(
        name=TRANSFER_LEADER,
        description="Move one region's leader to another of its peers' stores (a PD operator).",
        params=TransferLeaderParams,
        risk=Risk.LOW,
        retry_safe=True,
    ),
    ActionSpec(
        name=RESTART_STORE,
        description="Restart a store's process (delete its pod): leaders are evicted first "
        "when it is Up, and the eviction is removed once it is back or the wait ends.",
        params=StoreParams,
        risk=Risk.HIGH,
        disrupts_member=True,
        member_param="store",
    ),
)

# The actions that add an eviction of their own, and how long after their start their
# ownership lasts when only their record says so (no ledger entry in this process).
_EVICTING = (EVICT_LEADER, RESTART_STORE)
_REMOVING = (REMOVE_EVICT_LEADER, REMOVE_ANY_EVICT_LEADER)

# Successful results by (cluster, idempotency key): a retried call answers from here instead
# of acting twice. Process-wide, like the eviction ledger.
_DONE: BoundedMemo[ActionResult] = BoundedMemo()


class _NotDone(Exception):
    """A wait ended without the state it waited for."""


def _quorum_lost(region: RegionInfo, store_id: int) -> bool:
    """Would taking `store_id` away leave this region without a majority of healthy voters?
    Pending peers count as unavailable: they lag and cannot help commit."""
    voters = {p.store_id for p in region.peers if not p.is_learner and p.role_name != "Learner"}
    if store_id not in voters:
        return False
    healthy = voters - region.unhealthy_store_ids() - {store_id}
    return len(healthy) < len(voters) // 2 + 1


class Runner:
    """Preconditions and execution against one cluster."""

    def __init__(self, cfg: TikvConfig, ctx: PluginContext, pd: PdClient, cluster: str) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.pd = pd
        self.cluster = cluster
        self._run = Dispatch(
            "tikv",
            "action",
            ACTIONS,
            {
                EVICT_LEADER: self.evict_leader,
                REMOVE_EVICT_LEADER: lambda p, _key: self.remove_own_evict_leader(p.store_id),
                REMOVE_ANY_EVICT_LEADER: lambda p, _key: self.remove_evict_leader(p.store_id),
                TRANSFER_LEADER: lambda p, _key: self.transfer_leader(p),
                RESTART_STORE: lambda p, key: self.restart_store(p.store_id, key),
            },
        )

    # -- helpers -----------------------------------------------------------------------------

    async def live_stores(self) -> dict[int, StoreInfo]:
        stores = await self.pd.stores()
        now = self.pd.now()
        return {i.store.id: i for i in stores.stores if not condition(i, now).removed}

    def member_of(self, store: MetaStore) -> str:
        """The workload member (pod, program) that runs the store."""
        for key in (store_name(store.id), str(store.id)):
            if key in self.cfg.workload_members:
                return self.cfg.workload_members[key]
        m = re.match(self.cfg.member_pattern, store.address)
        if m and m.group("member"):
            return m.group("member")
        raise PluginError(
            f"cannot tell which workload member runs {store_name(store.id)} ({store.address}): "
            f"memberPattern {self.cfg.member_pattern!r} does not match; set workloadMembers"
        )

    async def _wait(self, done: Callable[[], Awaitable[bool]], seconds: float) -> bool:
        """Poll `done` until it holds (True) or `seconds` pass (False). Not asyncio.timeout:
        running out of time is an answer here, not an error, and a poll is never cut short."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            if await done():
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(min(self.cfg.poll_interval_seconds, deadline - loop.time()))

    async def _leaders(self, store_id: int) -> int:
        info = (await self.live_stores()).get(store_id)
        if info is None:
            raise PluginError(f"{store_name(store_id)} vanished from PD's store list")
        return info.status.leader_count

    async def _drop_eviction(self, store_id: int) -> str:
        """Remove our eviction and release it. Never raises: the caller is already on a
        failure path, and its own error is the one to report. Returns what happened."""
        owner = LEDGER.owner(self.cluster, store_id)
        LEDGER.release(self.cluster, store_id)
        try:
            await self.pd.remove_evict_leader(store_id)
        except Exception as err:
            if owner is not None:  # still ours, lapsed now: remove_evict_leader may remove it
                LEDGER.claim(self.cluster, store_id, owner.key, utcnow())
            return (
                f"{CLEANUP_FAILED} ({err}); the evict_leader_leftover invariant will report "
                "it, and remove_evict_leader may remove it (it is this operator's)"
            )
        return "its evict-leader scheduler was removed"

    # -- ownership ---------------------------------------------------------------------------

    async def owners(self, stores: set[int]) -> dict[int, Ownership | None]:
        """Who of this operator added each evicted store's scheduler (None: nobody of ours;
        an Ownership past its `until` is ours but lapsed). The process's ledger first; for a
        store it knows nothing of, the Incidents' records (one read, only then), which
        survive a crash. Raises PluginError when the records cannot be read."""
        out: dict[int, Ownership | None] = {s: LEDGER.owner(self.cluster, s) for s in stores}
        unknown = {s for s, o in out.items() if o is None}
        if not unknown:
            return out
        try:
            records = await self.ctx.records()
        except Exception as err:
            raise PluginError(
                f"cannot tell whether this operator added the evict-leader scheduler of "
                f"{', '.join(store_name(s) for s in sorted(unknown))}: its actions on record "
                f"cannot be read ({err})"
            ) from err
        for sid in unknown:
            out[sid] = self._owner_on_record(records, sid)
        return out

    async def owner(self, sid: int) -> Ownership | None:
        return (await self.owners({sid}))[sid]

    def _owner_on_record(self, records: list[ActionRecord], sid: int) -> Ownership | None:
        """The store's scheduler is ours when the newest record of an action that adds or
        removes one on it may have left its own in place: an evict_leader that is running,
        was interrupted, or succeeded and was not undone; a restart_store that is running,
        was interrupted, or failed without removing its eviction. A later removal, an undo or
        a clean finish ends it: a scheduler seen after those is somebody else's."""
        mine: list[tuple[ActionRecord, StoreParams]] = []
        for r in records:
            if r.action not in (*_EVICTING, *_REMOVING):
                continue
            try:
                p = (EvictLeaderParams if r.action == EVICT_LEADER else StoreParams).model_validate(
                    r.params
                )
            except ValidationError:
                continue
            if p.store_id == sid:
                mine.append((r, p))
        if not mine:
            return None
        r, p = max(mine, key=lambda rp: rp[0].started_at)
        interrupted = r.result in (Outcome.RUNNING, Outcome.UNKNOWN)
        if r.action == EVICT_LEADER and isinstance(p, EvictLeaderParams):
            if r.undone or (r.result == Outcome.FAILED and CLEANUP_FAILED not in r.message):
                return None
            lapses = r.started_at + timedelta(seconds=p.keep_for_seconds)
            live = r.result in (Outcome.RUNNING, Outcome.SUCCEEDED)
            return Ownership(r.key, lapses if live else r.started_at)
        if r.action == RESTART_STORE and (interrupted or CLEANUP_FAILED in r.message):
            budget = self.cfg.wait_timeout_seconds + self.cfg.restart_timeout_seconds + 60
            lapses = r.started_at + timedelta(seconds=budget)
            return Ownership(r.key, lapses if r.result == Outcome.RUNNING else r.started_at)
        return None

    # -- preconditions -----------------------------------------------------------------------

    async def preconditions(self, action: str, params: BaseModel) -> list[str]:
        if action not in {a.name for a in ACTIONS}:
            return [f"tikv has no action {action!r}"]
        if action == REMOVE_ANY_EVICT_LEADER:
            return []  # lets leaders come back, also while a store is down; a person approves
        if action == REMOVE_EVICT_LEADER and isinstance(params, StoreParams):
            return await self._remove_reasons(params.store_id)
        try:
            stores = await self.live_stores()
            _, evicted = await self.pd.evictions()
        except PluginError as err:
            return [f"cannot check the cluster's live state: {err}"]
        reasons: list[str] = []
        touched: set[int] = set()
        if isinstance(params, StoreParams):
            touched.add(params.store_id)
        if isinstance(params, TransferLeaderParams):
            touched.add(params.to_store)
        for sid in sorted(touched):
            if sid not in stores:
                known = ", ".join(store_name(s) for s in sorted(stores)) or "none"
                reasons.append(f"{store_name(sid)} is not a store of this cluster (PD has {known})")
        if reasons:
            return reasons

        region: RegionInfo | None = None
        if isinstance(params, TransferLeaderParams):
            try:
                region = await self.pd.region(params.region_id)
            except PluginError as err:
                return [f"cannot check the cluster's live state: {err}"]
            if region is None:
                return [f"PD knows no region {params.region_id}"]
            if region.leader_store:
                touched.add(region.leader_store)

        now = self.pd.now()
        for sid, info in sorted(stores.items()):
            # A silent Offline store is down too, though PD still calls it Offline.
            cond = condition(info, now)
            if sid not in touched and cond.state is MemberState.DOWN:
                what = f"down ({cond.message})" if cond.removing else info.store.state_name
                reasons.append(
                    f"{store_name(sid)} ({info.store.address}) is {what}: no store is touched "
                    f"while another store is down"
                )

        if isinstance(params, EvictLeaderParams):
            try:
                owner = await self.owner(params.store_id) if params.store_id in evicted else None
            except PluginError as err:
                return [str(err)]
            reasons += self._evict_reasons(params.store_id, stores, evicted, owner)
        elif isinstance(params, TransferLeaderParams) and region is not None:
            reasons += self._transfer_reasons(region, params.to_store, stores, evicted)
        elif action == RESTART_STORE and isinstance(params, StoreParams):
            reasons += await self._restart_reasons(params.store_id, stores)
        return reasons

    async def _remove_reasons(self, sid: int) -> list[str]:
        try:
            _, evicted = await self.pd.evictions()
            owner = await self.owner(sid) if sid in evicted else None
        except PluginError as err:
            return [f"cannot check the cluster's live state: {err}"]
        if sid in evicted and owner is None:
            return [_not_ours(sid)]
        return []  # ours (or none at all): lets leaders come back, also while a store is down

    def _evict_reasons(
        self, sid: int, stores: dict[int, StoreInfo], evicted: set[int], owner: Ownership | None
    ) -> list[str]:
        reasons = []
        now = self.pd.now()
        cond = condition(stores[sid], now)
        if cond.removing:
            reasons.append(
                f"{store_name(sid)} is being removed ({cond.message}): PD moves its leaders "
                "away already"
            )
        elif not cond.serving:
            reasons.append(f"{store_name(sid)} is down ({cond.message}): no leaders to move off it")
        if sid in evicted and owner is None:
            reasons.append(
                f"{store_name(sid)} already has an evict-leader scheduler this operator did not "
                f"add; remove_any_evict_leader (with an Approval) clears it"
            )
        takers = [
            s
            for s, i in stores.items()
            if s != sid and s not in evicted and condition(i, now).serving
        ]
        if not takers:
            reasons.append(
                f"no other Up store without an evict-leader scheduler could take "
                f"{store_name(sid)}'s leaders"
            )
        return reasons

    def _transfer_reasons(
        self, region: RegionInfo, to: int, stores: dict[int, StoreInfo], evicted: set[int]
    ) -> list[str]:
        reasons = []
        state = stores[to].store.state_name
        if state != "Up":
            reasons.append(f"target {store_name(to)} is {state}, not Up")
        voters = {p.store_id for p in region.peers if not p.is_learner}
        if to not in voters:
            where = ", ".join(store_name(s) for s in sorted(voters)) or "no store"
            reasons.append(
                f"{store_name(to)} holds no voter of region {region.id} (its voters are on {where})"
            )
        if to in evicted:
            reasons.append(
                f"{store_name(to)} is evicting leaders: PD would move the leader straight back"
            )
        return reasons

    async def _restart_reasons(self, sid: int, stores: dict[int, StoreInfo]) -> list[str]:
        reasons = []
        if self.ctx.workload is None:
            reasons.append(
                "the Subject has no workload (spec.workload): nothing can restart a store"
            )
        try:
            self.member_of(stores[sid].store)
        except PluginError as err:
            reasons.append(str(err))
        cond = condition(stores[sid], self.pd.now())
        if cond.removing:
            # PD never reports a store being removed Up again: the restart could not be seen
            # to work, and the store's removal is a person's decision.
            reasons.append(f"{store_name(sid)} is being removed ({cond.message})")
        try:
            checks = [await self.pd.region_check(c) for c in REGION_CHECKS]
        except PluginError as err:
            return [*reasons, f"cannot check region health: {err}"]
        at_risk = sorted({r.id for c in checks for r in c.regions if _quorum_lost(r, sid)})
        if at_risk:
            shown = ", ".join(map(str, at_risk[:5])) + (" …" if len(at_risk) > 5 else "")
            reasons.append(
                f"restarting {store_name(sid)} would leave {len(at_risk)} region(s) without a "
                f"quorum of healthy voters (regions {shown})"
            )
        return reasons

    # -- execution ---------------------------------------------------------------------------

    async def execute(self, action: str, params: BaseModel, key: str) -> ActionResult:
        return await once(_DONE, (self.cluster, key), lambda: self._run(action, params, key))

    async def evict_leader(self, p: EvictLeaderParams, key: str) -> ActionResult:
        sid, name = p.store_id, p.store
        _, evicted = await self.pd.evictions()
        previous = await self.owner(sid) if sid in evicted else LEDGER.owner(self.cluster, sid)
        if sid in evicted and previous is None:
            raise PluginError(
                f"{name} already has an evict-leader scheduler this operator did not add; "
                f"remove_any_evict_leader (with an Approval) clears it"
            )
        # This very action, sent again after a restart (same key): its scheduler is its own.
        resumed = previous is not None and previous.key == key
        if resumed:
            previous = None
        until = utcnow() + timedelta(seconds=p.keep_for_seconds)
        # Claimed before it exists, so an observation racing with the add never sees an
        # unowned eviction.
        LEDGER.claim(self.cluster, sid, key, until)
        try:
            if not (resumed and sid in evicted):
                try:
                    await self.pd.add_evict_leader(sid)
                except SchedulerExisted:
                    # PD before 4.0 adds none for a store that has one. An earlier action of
                    # ours added it: it drains all the same. Else someone added it between
                    # our read and our add: theirs.
                    if previous is None or sid not in evicted:
                        raise
            if not await self._wait(lambda: self._leaders_gone(sid), self.cfg.wait_timeout_seconds):
                raise _NotDone(
                    f"{name} still holds {await self._leaders(sid)} leader(s) after "
                    f"{self.cfg.wait_timeout_seconds:.0f} s"
                )
        except BaseException as err:
            if isinstance(err, SchedulerExisted):
                LEDGER.release(self.cluster, sid)  # never ours: left alone
                raise PluginError(f"evict_leader on {name} failed: {_appeared(sid)}") from err
            if previous is not None:
                # Another action of ours owned it before: it stays, and stays theirs.
                LEDGER.claim(self.cluster, sid, previous.key, previous.until)
                cleanup = "the earlier eviction of this operator stays in place"
            else:
                cleanup = await self._drop_eviction(sid)
            if isinstance(err, _NotDone):
                return ActionResult(ok=False, message=f"evict_leader: {err}; {cleanup}")
            if isinstance(err, Exception):
                raise PluginError(f"evict_leader on {name} failed: {err}; {cleanup}") from err
            raise  # cancelled: cleaned up, and the cancellation goes on
        return ActionResult(
            ok=True,
            message=f"{name} holds no leaders; its eviction is kept until {until.isoformat()} "
            f"(undo or remove_evict_leader removes it)",
            detail={"store": name, "owned_until": until.isoformat()},
        )

    async def _leaders_gone(self, sid: int) -> bool:
        return await self._leaders(sid) == 0

    async def remove_own_evict_leader(self, sid: int) -> ActionResult:
        """remove_evict_leader: only a scheduler this operator added (checked again here: the
        gate's look at the preconditions was a moment ago)."""
        _, evicted = await self.pd.evictions()
        if sid in evicted and await self.owner(sid) is None:
            raise PluginError(_not_ours(sid))
        return await self.remove_evict_leader(sid)

    async def remove_evict_leader(self, sid: int) -> ActionResult:
        LEDGER.release(self.cluster, sid)
        removed = await self.pd.remove_evict_leader(sid)
        message = (
            f"removed the evict-leader scheduler of {store_name(sid)}"
            if removed
            else f"{store_name(sid)} had no evict-leader scheduler"
        )
        return ActionResult(ok=True, message=message, detail={"removed": removed})

    async def transfer_leader(self, p: TransferLeaderParams) -> ActionResult:
        to = store_name(p.to_store)
        region = await self.pd.region(p.region_id)
        if region is None:
            raise PluginError(f"PD knows no region {p.region_id}")
        if region.leader_store == p.to_store:
            return ActionResult(ok=True, message=f"region {p.region_id}'s leader is on {to}")
        await self.pd.transfer_leader(p.region_id, p.to_store)

        async def moved() -> bool:
            now = await self.pd.region(p.region_id)
            return now is not None and now.leader_store == p.to_store

        if await self._wait(moved, self.cfg.wait_timeout_seconds):
            return ActionResult(ok=True, message=f"region {p.region_id}'s leader moved to {to}")
        return ActionResult(
            ok=False,
            message=f"PD accepted moving region {p.region_id}'s leader to {to}, but it had "
            f"not moved after {self.cfg.wait_timeout_seconds:.0f} s",
        )

    async def restart_store(self, sid: int, key: str) -> ActionResult:
        name = store_name(sid)
        workload = self.ctx.workload
        if workload is None:
            raise PluginError("the Subject has no workload (spec.workload): cannot restart")
        info = (await self.live_stores()).get(sid)
        if info is None:
            raise PluginError(f"{name} is not a store of this cluster")
        member = self.member_of(info.store)
        before = info.status.start_ts
        _, evicted = await self.pd.evictions()
        # Drain leaders first when it still serves them, unless an eviction is already there
        # (then it is someone else's to keep or remove).
        ours = member_state(info.store.state_name) is MemberState.UP and sid not in evicted
        notes: list[str] = []
        if ours:
            budget = self.cfg.wait_timeout_seconds + self.cfg.restart_timeout_seconds
            LEDGER.claim(self.cluster, sid, key, utcnow() + timedelta(seconds=budget + 60))

        async def back() -> bool:
            now = (await self.live_stores()).get(sid)
            return (
                now is not None
                and now.store.state_name == "Up"
                and (before is None or now.status.start_ts != before)
            )

        try:
            if ours:
                try:
                    await self.pd.add_evict_leader(sid)
                except SchedulerExisted as err:
                    ours = False  # someone added one since our read: theirs, left alone
                    LEDGER.release(self.cluster, sid)
                    raise PluginError(_appeared(sid)) from err
                if not await self._wait(
                    lambda: self._leaders_gone(sid), self.cfg.wait_timeout_seconds
                ):
                    notes.append("leaders had not all drained; restarted anyway")
            await workload.restart(member)
            is_back = await self._wait(back, self.cfg.restart_timeout_seconds)
        except BaseException as err:
            cleanup = f"; {await self._drop_eviction(sid)}" if ours else ""
            if isinstance(err, Exception):
                raise PluginError(f"restart_store on {name} failed: {err}{cleanup}") from err
            raise  # cancelled: cleaned up, and the cancellation goes on
        if ours:
            notes.append(await self._drop_eviction(sid))
        if is_back:
            return ActionResult(
                ok=True, message="; ".join([f"{name} ({member}) restarted and Up", *notes])
            )
        return ActionResult(
            ok=False,
            message="; ".join(
                [
                    f"{member} was restarted but {name} was not Up again within "
                    f"{self.cfg.restart_timeout_seconds:.0f} s",
                    *notes,
                ]
            ),
        )

    async def undo(self, action: str, params: BaseModel) -> ActionResult:
        if action == EVICT_LEADER and isinstance(params, StoreParams):
            # Idempotent: an eviction already gone is what undo wants.
            return await self.remove_evict_leader(params.store_id)
        raise PluginError(f"tikv cannot undo {action!r}")

    async def release(self, action: str, params: BaseModel, key: str) -> ActionResult:
        """An evict_leader or restart_store interrupted by an operator restart and not sent
        again: the eviction it added is removed if it is still this key's (nothing else of
        ours took it over since); anyone else's is left alone."""
        if action not in _EVICTING or not isinstance(params, StoreParams):
            return ActionResult(ok=True, message=f"{action} holds nothing to release")
        sid, name = params.store_id, params.store
        _, evicted = await self.pd.evictions()
        if sid not in evicted:
            LEDGER.release(self.cluster, sid)
            return ActionResult(ok=True, message=f"{name} has no evict-leader scheduler")
        owner = await self.owner(sid)
        if owner is None or owner.key != key:
            whose = f"action {owner.key}'s" if owner else "not this operator's"
            return ActionResult(
                ok=True,
                message=f"{name}'s evict-leader scheduler is {whose}, not {action}'s: left alone",
            )
        await self.remove_evict_leader(sid)
        return ActionResult(
            ok=True,
            message=f"{action} was interrupted and is not sent again: the evict-leader "
            f"scheduler it added on {name} was removed",
        )


def _appeared(sid: int) -> str:
    return (
        f"{store_name(sid)} got an evict-leader scheduler this operator did not add a moment "
        f"ago (PD: scheduler existed); it is left alone: remove_any_evict_leader (with an "
        f"Approval) clears it"
    )


def _not_ours(sid: int) -> str:
    return (
        f"{store_name(sid)}'s evict-leader scheduler was not added by this operator (a person "
        f"may keep it on purpose): remove_any_evict_leader removes it with an Approval"
    )
