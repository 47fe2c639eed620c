"""Where the demo's screen comes from, and nothing else: the API server (one watch per kind),
the incident's audit log (tailed as it is written) and Prometheus. Each source runs in a
daemon thread and writes into one `Store`; the screen reads snapshots of it."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from aiops.api import GROUP, VERSION
from aiops.audit import AuditError
from aiops.audit.record import AuditRecord, parse_line
from aiops.cli.printable import printable

PLURALS = ("subjects", "incidents", "chaos", "approvals")


def clean(value: Any) -> Any:
    """`value` with every string made safe for the screen (aiops.cli.printable): a
    diagnosis, a rationale or a message may carry escape sequences that would redraw it."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


HISTORY = 240  # Prometheus samples kept per series (one a second: four minutes)


@dataclass
class Store:
    """Everything the sources saw. Readers take `lock`; `version` grows with each change,
    so the screen redraws only when something changed (or a clock ticks)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    version: int = 0
    objects: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {p: {} for p in PLURALS}
    )
    synced: set[str] = field(default_factory=set)  # plurals listed at least once
    audit: dict[str, list[AuditRecord]] = field(default_factory=dict)  # incident -> records
    audit_problem: dict[str, str] = field(default_factory=dict)
    series: dict[str, deque[float]] = field(default_factory=dict)  # label -> samples
    gauges: dict[str, float] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # source -> what is wrong now

    def bump(self) -> None:
        self.version += 1

    def get(self, plural: str, name: str | None) -> dict[str, Any] | None:
        with self.lock:
            return self.objects[plural].get(name) if name else None

    def items(self, plural: str) -> list[dict[str, Any]]:
        with self.lock:
            objs = list(self.objects[plural].values())
        return sorted(
            objs,
            key=lambda o: (o["metadata"].get("creationTimestamp") or "", o["metadata"]["name"]),
        )

    def problem(self, source: str, text: str | None) -> None:
        with self.lock:
            if text is None:
                if self.problems.pop(source, None) is not None:
                    self.bump()
            elif self.problems.get(source) != text:
                self.problems[source] = text
                self.bump()


class Watcher(threading.Thread):
    """List, then watch from the list's resourceVersion; a 410 (too old) lists again. The
    watch ends every `timeout` seconds so `stop` is seen; it resumes where it was."""

    def __init__(
        self,
        store: Store,
        api: client.CustomObjectsApi,
        namespace: str,
        plural: str,
        stop: threading.Event,
        timeout: int = 10,
    ) -> None:
        super().__init__(name=f"watch-{plural}", daemon=True)
        self.store, self.api, self.namespace, self.plural = store, api, namespace, plural
        self.stop, self.timeout = stop, timeout

    def run(self) -> None:
        version: str | None = None
        while not self.stop.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                self.store.problem(self.plural, None)
            except ApiException as err:
                if err.status == 410:
                    version = None
                    continue
                self.store.problem(self.plural, f"watch {self.plural}: {err.status} {err.reason}")
                self.stop.wait(1.0)
            except Exception as err:  # the API server is away: say so, and try again
                self.store.problem(self.plural, f"watch {self.plural}: {type(err).__name__}")
                version = None
                self.stop.wait(1.0)

    def _list(self) -> str:
        listed = cast(
            dict[str, Any],
            self.api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, self.plural, _request_timeout=10
            ),
        )
        with self.store.lock:
            self.store.objects[self.plural] = {
                o["metadata"]["name"]: clean(o) for o in listed.get("items", [])
            }
            self.store.synced.add(self.plural)
            self.store.bump()
        return str(listed["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str | None:
        w = watch.Watch()
        for event in w.stream(
            self.api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            self.plural,
            resource_version=version,
            timeout_seconds=self.timeout,
            allow_watch_bookmarks=True,
            _request_timeout=self.timeout + 5,
        ):
            obj = event["object"]
            if event["type"] == "ERROR":
                w.stop()
                return None  # 410 Gone among them: list again
            version = obj["metadata"]["resourceVersion"]
            if event["type"] != "BOOKMARK":
                with self.store.lock:
                    objs = self.store.objects[self.plural]
                    if event["type"] == "DELETED":
                        objs.pop(obj["metadata"]["name"], None)
                    else:
                        objs[obj["metadata"]["name"]] = clean(obj)
                    self.store.bump()
            if self.stop.is_set():
                w.stop()
        return version


class AuditTail:
    """Follows incidents' logs as the operator appends to them: each poll reads what was
    added since the last one, complete lines only (a line being written waits)."""

    def __init__(self, store: Store, root: Path, namespace: str) -> None:
        self.store, self.root, self.namespace = store, root, namespace
        self.offsets: dict[str, int] = {}
        self.rests: dict[str, bytes] = {}

    def path(self, name: str) -> Path:
        return self.root / self.namespace / f"{name}.jsonl"

    def poll(self, name: str) -> None:
        path = self.path(name)
        try:
            with path.open("rb") as f:
                f.seek(self.offsets.get(name, 0))
                chunk = f.read()
        except FileNotFoundError:
            return
        except OSError as err:
            with self.store.lock:
                self.store.audit_problem[name] = f"cannot read {path}: {err.strerror}"
                self.store.bump()
            return
        if not chunk:
            return
        self.offsets[name] = self.offsets.get(name, 0) + len(chunk)
        *lines, rest = (self.rests.pop(name, b"") + chunk).split(b"\n")
        self.rests[name] = rest
        records = []
        for line in lines:
            try:
                records.append(parse_line(line))
            except AuditError as err:
                with self.store.lock:
                    self.store.audit_problem[name] = f"a line holds no record: {err}"
        with self.store.lock:
            self.store.audit.setdefault(name, []).extend(records)
            self.store.bump()


@dataclass(frozen=True)
class Query:
    label: str
    promql: str
    series: bool = True  # kept as a history (a sparkline), else only the last value


class Sampler(threading.Thread):
    """Every `every` seconds: each query against Prometheus, and the audit logs of the
    incidents `incidents()` names."""

    def __init__(
        self,
        store: Store,
        prometheus: str | None,
        queries: list[Query],
        tail: AuditTail | None,
        incidents: Any,
        stop: threading.Event,
        every: float = 1.0,
    ) -> None:
        super().__init__(name="sampler", daemon=True)
        self.store, self.prometheus, self.queries = store, prometheus, queries
        self.tail, self.incidents, self.stop, self.every = tail, incidents, stop, every

    def run(self) -> None:
        http = httpx.Client(timeout=2.0)
        last_prom = 0.0
        while not self.stop.is_set():
            if self.tail is not None:
                for name in self.incidents():
                    self.tail.poll(name)
            now = time.monotonic()
            if self.prometheus and now - last_prom >= self.every:
                last_prom = now
                self._sample(http)
            self.stop.wait(0.2)  # the audit log is followed closely; Prometheus each second
        http.close()

    def _sample(self, http: httpx.Client) -> None:
        values: dict[str, float | None] = {}
        try:
            for q in self.queries:
                r = http.get(f"{self.prometheus}/api/v1/query", params={"query": q.promql})
                r.raise_for_status()
                result = r.json()["data"]["result"]
                values[q.label] = float(result[0]["value"][1]) if result else None
        except (httpx.HTTPError, ValueError, KeyError, IndexError) as err:
            self.store.problem("prometheus", f"Prometheus: {type(err).__name__}")
            return
        self.store.problem("prometheus", None)
        with self.store.lock:
            for q in self.queries:
                value = values.get(q.label)
                if q.series:
                    self.store.series.setdefault(q.label, deque(maxlen=HISTORY)).append(
                        value or 0.0
                    )
                if value is None:
                    self.store.gauges.pop(q.label, None)
                else:
                    self.store.gauges[q.label] = value
            self.store.bump()
