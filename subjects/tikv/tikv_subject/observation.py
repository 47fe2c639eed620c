"""One observation: read PD and Prometheus concurrently, then turn the answers into members,
metrics per store and bounded facts.

Any read that fails fails the whole observation with a message that says which one and why;
the core turns that into Unknown. Nothing here defaults a missing answer to "healthy".
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiops.subjects.contract import Member, MemberState, Observation, PluginError
from aiops.subjects.metrics import MetricsError, Prometheus, Sample
from tikv_subject.config import TikvConfig
from tikv_subject.ledger import Ownership
from tikv_subject.pd import REGION_CHECKS, PdClient
from tikv_subject.pd_models import RegionInfo, RegionsInfo, StoreInfo, StoresInfo
from tikv_subject.queries import Queries
from tikv_subject.stores import Condition, condition, series_index, status_endpoint, store_name

MAX_REGIONS_IN_FACTS = 10
MAX_UNMATCHED_SERIES = 10
LATENCY_CAP_SECONDS = 1e6  # histogram_quantile answers +Inf past the top bucket
_USERINFO = re.compile(r"//[^/@\s]+@")

# Metric names in Observation.metrics.
STORE_UP = "store_up"
LEADERS = "leader_count"
LEADER_WEIGHT = "leader_weight"
REGIONS = "region_count"
DISK_AVAILABLE = "disk_available_ratio"
EVICTING = "evicting_leaders"
P99 = "grpc_p99_seconds"
SCRAPED = "metrics_scraped"
UNHEALTHY_REGIONS = "unhealthy_regions"


@dataclass(frozen=True)
class Reads:
    stores: StoresInfo
    schedulers: list[str]
    evicted: set[int]
    checks: dict[str, RegionsInfo]
    p99: list[Sample] | None  # None: no Prometheus configured
    scraped: list[Sample] | None
    pd_now: datetime  # PD's clock when it answered: heartbeat ages are measured on it


async def gather(calls: dict[str, Callable[[], Awaitable[Any]]]) -> dict[str, Any]:
    """Run the reads concurrently; if any fails, cancel the rest and raise one PluginError
    that names every read that failed (a TaskGroup would raise an unreadable group)."""
    tasks = {name: asyncio.ensure_future(call()) for name, call in calls.items()}
    try:
        await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_EXCEPTION)
    finally:
        # Also when we are cancelled (the core's observation timeout): leave nothing running.
        for t in tasks.values():
            if not t.done():
                t.cancel()
    failed = [t for t in tasks.values() if t.done() and not t.cancelled() and t.exception()]
    if failed:
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        messages = list(dict.fromkeys(_message(t.exception()) for t in failed))
        raise PluginError("; ".join(messages)) from failed[0].exception()
    return {name: t.result() for name, t in tasks.items()}


def _message(err: BaseException | None) -> str:
    # Our own errors are written to be read; anything else gets its type, as "'id'" alone
    # (a KeyError) says nothing.
    return str(err) if isinstance(err, PluginError) else f"{type(err).__name__}: {err}"


async def _query(prometheus: Prometheus, what: str, promql: str) -> list[Sample]:
    try:
        return await prometheus.query(promql)
    except MetricsError as err:
        # The core's message carries the Prometheus URL: mask any user:password in it.
        message = _USERINFO.sub("//***@", str(err))
        raise PluginError(f"cannot read TiKV {what} from Prometheus: {message}") from err


async def read(pd: PdClient, prometheus: Prometheus | None, queries: Queries) -> Reads:
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "stores": pd.stores,
        "evictions": pd.evictions,
    }
    for check in REGION_CHECKS:
        # The count and the regions facts show: a down store's list of every region it held
        # is read no further.
        calls[check] = functools.partial(pd.region_check, check, MAX_REGIONS_IN_FACTS)
    if prometheus is not None:
        prom = prometheus
        calls["p99"] = lambda: _query(prom, "gRPC latency", queries.grpc_p99_seconds)
        calls["scraped"] = lambda: _query(prom, "scrape health", queries.scrape_up)
    got = await gather(calls)
    names, evicted = got["evictions"]
    return Reads(
        stores=got["stores"],
        schedulers=names,
        evicted=evicted,
        checks={c: got[c] for c in REGION_CHECKS},
        p99=got.get("p99"),
        scraped=got.get("scraped"),
        pd_now=pd.now(),
    )


def _per_store(
    samples: list[Sample], index: dict[str, int], label: str, unmatched: list[str]
) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in samples:
        key = labels.get(label, "")
        store_id = index.get(key)
        if store_id is None:
            unmatched.append(f"{label}={key!r}" if key else f"(no {label} label)")
            continue
        out[store_name(store_id)] = min(value, LATENCY_CAP_SECONDS) if math.isinf(value) else value
    return out


def region_fact(region: RegionInfo) -> dict[str, Any]:
    return {
        "id": region.id,
        "leader": store_name(region.leader_store) if region.leader_store else None,
        "peers": sorted(store_name(s) for s in region.store_ids()),
        "down": sorted(store_name(d.peer.store_id) for d in region.down_peers),
        "pending": sorted(store_name(p.store_id) for p in region.pending_peers),
    }


def _member(info: StoreInfo, cond: Condition) -> Member:
    return Member(
        name=store_name(info.store.id),
        state=cond.state,
        role="tikv",
        address=info.store.address,
        last_seen=info.status.last_heartbeat_ts,
        message=cond.message,
    )


def build(
    reads: Reads,
    cfg: TikvConfig,
    owners: dict[int, Ownership | None],
    now: datetime,
) -> Observation:
    conditions = {i.store.id: condition(i, reads.pd_now) for i in reads.stores.stores}
    live = [i for i in reads.stores.stores if not conditions[i.store.id].removed]
    gone = [i for i in reads.stores.stores if conditions[i.store.id].removed]
    metrics: dict[str, dict[str, float]] = {
        STORE_UP: {},
        LEADERS: {},
        LEADER_WEIGHT: {},
        REGIONS: {},
        DISK_AVAILABLE: {},
        EVICTING: {},
    }
    store_facts: list[dict[str, Any]] = []
    for info in live:
        s, st = info.store, info.status
        name = store_name(s.id)
        cond = conditions[s.id]
        # Heartbeating: Up, or Offline and still alive (it serves until PD has emptied it).
        alive = cond.state in (MemberState.UP, MemberState.DEGRADED)
        metrics[STORE_UP][name] = 1.0 if alive else 0.0
        metrics[LEADERS][name] = float(st.leader_count)
        metrics[LEADER_WEIGHT][name] = st.leader_weight
        metrics[REGIONS][name] = float(st.region_count)
        metrics[EVICTING][name] = 1.0 if s.id in reads.evicted else 0.0
        if st.capacity and st.available is not None:
            metrics[DISK_AVAILABLE][name] = st.available / st.capacity
        store_facts.append(
            {
                "name": name,
                "address": s.address,
                "status_address": status_endpoint(s, cfg.status_port),
                "state": s.state_name,
                "removing": cond.removing,
                "version": s.version,
                "leaders": st.leader_count,
                "regions": st.region_count,
            }
        )

    metrics[UNHEALTHY_REGIONS] = {c: float(r.count) for c, r in reads.checks.items()}
    evictions = []
    for store_id in sorted(reads.evicted):
        owner = owners.get(store_id)
        evictions.append(
            {
                "store": store_name(store_id),
                "owner": owner.key if owner else None,
                "owned_until": owner.until.isoformat() if owner else None,
            }
        )
    facts: dict[str, Any] = {
        "stores": store_facts,
        "listed_stores": reads.stores.count,
        "removed_stores": [store_name(i.store.id) for i in gone],
        "schedulers": reads.schedulers,
        "evict_leader": evictions,
        "region_checks": {
            c: {
                "count": r.count,
                "regions": [region_fact(x) for x in r.regions[:MAX_REGIONS_IN_FACTS]],
            }
            for c, r in reads.checks.items()
        },
    }
    if reads.p99 is None or reads.scraped is None:
        facts["prometheus"] = "not configured: high_latency and metrics_missing are not judged"
    else:
        index = series_index([i.store for i in live], cfg.status_port)
        unmatched: list[str] = []
        metrics[P99] = _per_store(reads.p99, index, cfg.store_label, unmatched)
        metrics[SCRAPED] = _per_store(reads.scraped, index, cfg.store_label, unmatched)
        facts["prometheus"] = "ok"
        if unmatched:
            facts["unmatched_series"] = sorted(set(unmatched))[:MAX_UNMATCHED_SERIES]
    return Observation(
        observed_at=now,
        members=[_member(i, conditions[i.store.id]) for i in live],
        metrics=metrics,
        facts=facts,
    )
