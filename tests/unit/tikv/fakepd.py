"""Stand-ins for the systems around the plugin (never for the plugin's own code):

- `FakePd`: PD's HTTP API, served through `httpx.MockTransport` from the JSON contract
  fixtures in fixtures/pd/, with the little state the actions change (evict-leader
  schedulers, region leaders, a store's start time after a restart).
- `StubPrometheus`: Prometheus's `/api/v1/query` on a real 127.0.0.1 socket (the core's
  client speaks `requests`, so it needs one), answering from per-test series.
- `FakeWorkload`: the pods API's `restart`, which tells FakePd that the store restarted, and
  the member faults, recorded; `exec` answers `tc` as a pod's iproute2 would.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from aiops.subjects.contract import INSTANT, ActionResult
from aiops.subjects.faults.diskfill import FillParams
from aiops.subjects.faults.podexec import ExecResult
from tests.fixtures.pd_standin import PdStandIn

FIXTURES = Path(__file__).parent / "fixtures" / "pd"
API = "/pd/api/v1"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _json(status: int, body: Any) -> httpx.Response:
    # As PD's render does it: indented JSON, and `null` for nil (httpx's json=None sends nothing).
    return httpx.Response(
        status,
        content=json.dumps(body, indent=2).encode(),
        headers={"content-type": "application/json; charset=UTF-8"},
    )


class FakePd:
    def __init__(
        self,
        stores: str = "stores_healthy.json",
        checks: dict[str, str] | None = None,
        schedulers: str = "schedulers_default.json",
    ) -> None:
        # A unique host per test: the plugin's process-wide ledgers are keyed by PD URL.
        self.url = f"http://pd-{uuid.uuid4().hex[:8]}.tikv.svc:2379"
        self.stores: dict[str, Any] = load(stores)
        checks = checks or {}
        self.checks = {
            c: load(checks.get(c, "regions_empty.json"))
            for c in ("miss-peer", "down-peer", "pending-peer")
        }
        self.regions: dict[int, Any] = {12: load("region_12.json")}
        names: list[str] = load(schedulers)
        self.other_schedulers = [n for n in names if not n.startswith("evict-leader-scheduler")]
        self.evicted: set[int] = {
            int(m.group(1)) for n in names if (m := re.match(r"evict-leader-scheduler-(\d+)$", n))
        }
        if "evict-leader-scheduler" in names:
            self.evicted |= {int(k) for k in load("evict_leader_list.json")["store-id-ranges"]}
        self.pre_4_0 = any(re.match(r"evict-leader-scheduler-\d+$", n) for n in names)
        self.drains = True  # an evicted store reports no leaders at its next heartbeat
        self.requests: list[str] = []
        # fault(request) may answer instead of PD (an error), or raise (a network failure).
        self.fault: Callable[[httpx.Request], httpx.Response | None] | None = None

    # -- state --------------------------------------------------------------------------

    def store(self, store_id: int) -> dict[str, Any]:
        return next(s for s in self.stores["stores"] if s["store"]["id"] == store_id)

    def restarted(self, member: str) -> None:
        for s in self.stores["stores"]:
            if s["store"]["address"].split(".", 1)[0] == member:
                s["store"]["state_name"] = "Up"
                s["status"]["start_ts"] = "2026-03-02T11:00:00Z"
                return
        raise AssertionError(f"no store runs in {member}")

    def _stores_answer(self) -> Any:
        body = copy.deepcopy(self.stores)
        for s in body["stores"]:
            if self.drains and s["store"].get("id") in self.evicted:
                s["status"]["leader_count"] = 0
        return body

    def _schedulers_answer(self) -> list[str]:
        if not self.evicted:
            return list(self.other_schedulers)
        if self.pre_4_0:
            return self.other_schedulers + [f"evict-leader-scheduler-{s}" for s in self.evicted]
        return [*self.other_schedulers, "evict-leader-scheduler"]

    # -- the HTTP API ---------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append(f"{request.method} {path}")
        if self.fault is not None:
            answer = self.fault(request)
            if answer is not None:
                return answer
        method = request.method
        if method == "GET" and path == f"{API}/stores":
            return _json(200, self._stores_answer())
        m = re.fullmatch(rf"{API}/regions/check/([a-z-]+)", path)
        if method == "GET" and m and m.group(1) in self.checks:
            return _json(200, self.checks[m.group(1)])
        if method == "GET" and (m := re.fullmatch(rf"{API}/region/id/(\d+)", path)):
            return _json(200, self.regions.get(int(m.group(1))))
        if method == "GET" and path == f"{API}/schedulers":
            return _json(200, self._schedulers_answer())
        if method == "GET" and path == f"{API}/scheduler-config/evict-leader-scheduler/list":
            if not self.evicted or self.pre_4_0:
                return _json(404, "[PD:scheduler:ErrSchedulerNotFound]scheduler not found")
            ranges = {str(s): [{"start-key": "", "end-key": ""}] for s in sorted(self.evicted)}
            return _json(200, {"store-id-ranges": ranges, "batch": 3})
        if method == "POST" and path == f"{API}/schedulers":
            body = json.loads(request.content)
            if body.get("name") != "evict-leader-scheduler" or "store_id" not in body:
                return _json(400, "unknown scheduler")
            self.evicted.add(int(body["store_id"]))
            return _json(200, "The scheduler is created.")
        if method == "DELETE" and (
            m := re.fullmatch(rf"{API}/schedulers/evict-leader-scheduler-(\d+)", path)
        ):
            store_id = int(m.group(1))
            if store_id not in self.evicted:
                return _json(404, "[PD:scheduler:ErrSchedulerNotFound]scheduler not found")
            self.evicted.discard(store_id)
            return _json(200, "The scheduler is removed.")
        if method == "POST" and path == f"{API}/operators":
            body = json.loads(request.content)
            region = self.regions.get(int(body.get("region_id", 0)))
            if body.get("name") != "transfer-leader" or region is None:
                return _json(500, "[PD:operator:ErrRegionNotFound]region not found")
            to = int(body["to_store_id"])
            region["leader"] = next(p for p in region["peers"] if p["store_id"] == to)
            return _json(200, None)
        return httpx.Response(404, text="404 page not found\n")

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))


class FakeWorkload:
    """The pods API: deleting a pod restarts its store (in FakePd or the PD stand-in)."""

    def __init__(self, pd: FakePd | PdStandIn) -> None:
        self.pd = pd
        self.restarted: list[str] = []
        self.stopped: list[str] = []
        self.error: Exception | None = None
        self.killed: list[str] = []
        self.paused: set[str] = set()
        self.policies: dict[str, tuple[str, str]] = {}  # policy name -> (pod, direction)
        # member -> (directory, params, container)
        self.fills: dict[str, tuple[str, FillParams, str | None]] = {}
        self.qdisc: dict[str, str] = {}  # member -> its root qdisc line, when not the default
        self.execs: list[tuple[str, list[str], str | None]] = []

    async def restart(self, member: str) -> ActionResult:
        if self.error is not None:
            raise self.error
        self.restarted.append(member)
        if isinstance(self.pd, FakePd):
            self.pd.requests.append(f"RESTART {member}")  # for tests of the order of events
        self.pd.restarted(member)
        return ActionResult(ok=True, message=f"pod {member} deleted")

    async def stop(self, member: str) -> ActionResult:
        self.stopped.append(member)
        return ActionResult(ok=True, message=f"pod {member} deleted")

    async def start(self, member: str) -> ActionResult:
        return ActionResult(ok=True, message=f"pod {member} is managed by its controller")

    async def running(self, member: str) -> bool:
        return member not in self.stopped

    # -- faults (recorded; `exec` plays tc) --------------------------------------------------

    async def kill(self, member: str) -> ActionResult:
        self.killed.append(member)
        return ActionResult(ok=True, message=f"pod {member} deleted", detail={INSTANT: True})

    async def pause(self, member: str) -> ActionResult:
        self.paused.add(member)
        return ActionResult(ok=True, message=f"{member} paused")

    async def resume(self, member: str) -> ActionResult:
        was = member in self.paused
        self.paused.discard(member)
        return ActionResult(ok=True, message=f"{member} " + ("resumed" if was else "not paused"))

    async def partition(self, member: str, name: str, direction: str) -> ActionResult:
        self.policies[name] = (member, direction)
        return ActionResult(ok=True, message=f"{member} cut off by {name}")

    async def heal(self, member: str, name: str) -> ActionResult:
        gone = self.policies.pop(name, None) is None
        return ActionResult(
            ok=True, message=f"{name} " + ("was already gone" if gone else "deleted")
        )

    async def fill_disk(
        self, member: str, directory: str, params: FillParams, container: str | None = None
    ) -> ActionResult:
        self.fills[member] = (directory, params, container)
        return ActionResult(ok=True, message=f"filled {directory}")

    async def unfill_disk(
        self, member: str, directory: str, container: str | None = None
    ) -> ActionResult:
        gone = self.fills.pop(member, None) is None
        return ActionResult(ok=True, message="nothing to remove" if gone else "removed")

    async def exec(self, member: str, argv: list[str], container: str | None = None) -> ExecResult:
        """`tc qdisc replace|show|del dev D root ...` as a pod's iproute2 answers them."""
        self.execs.append((member, argv, container))
        if argv[:3] != ["tc", "qdisc", argv[2]] or argv[2] not in ("replace", "show", "del"):
            return ExecResult(127, "", f"sh: {argv[0]}: not found")
        if argv[2] == "replace":
            handle = argv[argv.index("handle") + 1]
            self.qdisc[member] = (
                f"qdisc {argv[argv.index('handle') + 2]} {handle} root "
                f"refcnt 2 limit 1000 {' '.join(argv[argv.index('delay') :])}"
            )
            return ExecResult(0, "", "")
        if argv[2] == "show":
            return ExecResult(
                0, self.qdisc.get(member, "qdisc noqueue 0: root refcnt 2") + "\n", ""
            )
        if member not in self.qdisc:
            return ExecResult(2, "", "Error: Cannot delete qdisc with handle of zero.")
        del self.qdisc[member]
        return ExecResult(0, "", "")


Answer = Callable[[str], tuple[int, str, bytes]]


class StubPrometheus:
    """Answers /api/v1/query with `vector(query)` (a list of (labels, value)) or, when
    `raw` is set, with exactly that (status, content type, body)."""

    def __init__(self) -> None:
        self.series: dict[str, list[tuple[dict[str, str], float]]] = {}
        self.raw: tuple[int, str, bytes] | None = None
        self.queries: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query).get("query", [""])[0]
                stub.queries.append(query)
                status, ctype, body = stub.answer(query)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, query: str) -> tuple[int, str, bytes]:
        if self.raw is not None:
            return self.raw
        key = (
            "latency"
            if "tikv_grpc_msg_duration_seconds_bucket" in query
            else ("up" if "up{" in query else "")
        )
        result = [
            {"metric": labels, "value": [1772446530.0, repr(value)]}
            for labels, value in self.series.get(key, [])
        ]
        body = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return 200, "application/json", json.dumps(body).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
