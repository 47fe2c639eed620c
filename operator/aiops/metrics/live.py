"""Gauges of what is open now, read at scrape time from the objects the running daemons hold.

Each incident daemon (one per open Incident) and chaos daemon (one per unfinished Chaos)
registers kopf's live view of its object here while it runs, and removes it when it ends. A
scrape counts them: open incidents by Subject and phase, steps waiting for an Approval, Chaos
faults still in place. Nothing is kept that a restart could get wrong: the daemons of a new
operator register what is open then, and a standby replica (kopf peering) runs no daemons, so
it reports zeros instead of stale numbers.

A Subject or a (Subject, fault) seen once keeps its series, at 0 when nothing is open: a gauge
that vanishes reads as "no data" on a dashboard, not as none.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from aiops.vocabulary import ACTIVE_TARGETS, TERMINAL, Phase, Verdict

OPEN_PHASES = tuple(p for p in Phase if p not in TERMINAL)

Body = Mapping[str, Any]


class LiveObjects(Collector):
    """The objects of the running daemons, by `namespace/name`. Written from the event loop,
    read from the metrics server's thread: a lock keeps each side whole."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._incidents: dict[str, Body] = {}
        self._chaos: dict[str, Body] = {}
        self._subjects: set[str] = set()
        self._faults: set[tuple[str, str]] = set()

    # -- the daemons' side ----------------------------------------------------------------

    def add_incident(self, namespace: str, name: str, body: Body) -> None:
        with self._lock:
            self._incidents[f"{namespace}/{name}"] = body

    def drop_incident(self, namespace: str, name: str) -> None:
        with self._lock:
            self._incidents.pop(f"{namespace}/{name}", None)

    def incident(self, namespace: str, name: str) -> Body | None:
        with self._lock:
            return self._incidents.get(f"{namespace}/{name}")

    def add_chaos(self, namespace: str, name: str, body: Body) -> None:
        with self._lock:
            self._chaos[f"{namespace}/{name}"] = body

    def drop_chaos(self, namespace: str, name: str) -> None:
        with self._lock:
            self._chaos.pop(f"{namespace}/{name}", None)

    def seen_subject(self, subject: str) -> None:
        with self._lock:
            self._subjects.add(subject)

    # -- the scrape's side ----------------------------------------------------------------

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            incidents = [(k, _plain(b)) for k, b in self._incidents.items()]
            chaos = [(k, _plain(b)) for k, b in self._chaos.items()]
        open_now: Counter[tuple[str, str]] = Counter()
        waiting: Counter[str] = Counter()
        for key, obj in incidents:
            subject = _subject(key, obj)
            status = obj.get("status") or {}
            phase = status.get("phase") or Phase.OPEN
            if phase in TERMINAL:
                continue  # its daemon is about to end
            open_now[(subject, phase)] += 1
            if phase == Phase.AWAITING_APPROVAL:
                waiting[subject] += sum(
                    1
                    for p in status.get("proposedActions") or []
                    if p.get("decision") == Verdict.AWAIT_APPROVAL and not p.get("approvalUid")
                )
        faults: Counter[tuple[str, str]] = Counter()
        for key, obj in chaos:
            spec = obj.get("spec") or {}
            targets = (obj.get("status") or {}).get("targets") or []
            pair = (_subject(key, obj), str(spec.get("fault") or "unknown"))
            faults[pair] += sum(1 for t in targets if t.get("state") in ACTIVE_TARGETS)
        with self._lock:
            self._subjects.update(s for s, _ in open_now)
            self._subjects.update(waiting)
            self._faults.update(faults)
            subjects, pairs = sorted(self._subjects), sorted(self._faults)

        g_open = GaugeMetricFamily(
            "aiops_incidents_open",
            "Open Incidents (their daemons run in this operator), by Subject and phase.",
            labels=["subject", "phase"],
        )
        for subject in subjects:
            for phase in OPEN_PHASES:
                g_open.add_metric([subject, phase], open_now[(subject, phase)])
        yield g_open
        g_wait = GaugeMetricFamily(
            "aiops_approvals_pending",
            "Proposed steps waiting for a person's Approval, by Subject.",
            labels=["subject"],
        )
        for subject in subjects:
            g_wait.add_metric([subject], waiting[subject])
        yield g_wait
        g_chaos = GaugeMetricFamily(
            "aiops_chaos_faults_active",
            "Chaos targets holding a fault now (injecting, injected, or a revert that failed), "
            "by Subject and fault.",
            labels=["subject", "fault"],
        )
        for subject, fault in pairs:
            g_chaos.add_metric([subject, fault], faults[(subject, fault)])
        yield g_chaos


def _plain(body: Body) -> dict[str, Any]:
    """What a scrape reads of a live view: spec and status, copied under the lock."""
    return {"spec": dict(body.get("spec") or {}), "status": dict(body.get("status") or {})}


def _subject(key: str, obj: Mapping[str, Any]) -> str:
    namespace = key.split("/", 1)[0]
    return f"{namespace}/{(obj.get('spec') or {}).get('subject') or 'unknown'}"


LIVE = LiveObjects()
REGISTRY.register(LIVE)
