"""`IncidentTools`: the read-only `Toolbox` an agent gets for one incident.

Everything here reads: the subject (through its plugin), PromQL, and Kubernetes objects of the
Subject's namespace only, through the operator's own client and identity. The one thing that
looks like a write, `check_action`, only asks the policy gate what it *would* decide.

Every read is bounded first (pod logs and `kubectl logs` by bytes, kubectl's output by bytes,
lists by items, PromQL by series, each string by characters), so that nothing a pod logs or a
model asks for can make the operator hold or scan an unbounded amount of text; what was cut is
said in the output. Then it is redacted (registered secrets, secret-looking keys and shapes),
in a worker thread, and clipped to a budget, in that order: a secret cut in half may no longer
look like one. kubectl may only print JSON, YAML or its tables: templates (`jsonpath`,
`go-template`, `custom-columns`) print values without the key names that redaction relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from aiops.actions import action_specs
from aiops.actions.kubectl.argv import KIND_ALIASES, KubectlRefused, read_command
from aiops.actions.kubectl.command import kubectl_env
from aiops.agent.base import ToolError
from aiops.agent.tool_schemas import compact_schema
from aiops.redact import Redactor, truncate
from aiops.subjects.contract import Invariant, SubjectPlugin
from aiops.subjects.metrics import MetricsError, Prometheus

PreviewFn = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""The policy gate's preview of one step: `{"decision": <a Verdict>, "reason": ...}`. Nothing
runs."""

DEFAULT_BUDGET = 6000
MAX_LIST_ITEMS = 100
MAX_SERIES = 50
MAX_RANGE_POINTS = 600
MAX_LOG_TAIL = 1000
KUBECTL_TIMEOUT = 20.0
MAX_LOG_BYTES = 256 * 1024  # of one container's log, asked of the API server
MAX_LOG_CONTAINERS = 8
MAX_KUBECTL_STDOUT = 1024 * 1024  # bytes read from kubectl; then it is stopped
MAX_KUBECTL_STDERR = 64 * 1024
# Characters of one string that are redacted at all (head and tail, cut at line breaks);
# at least this, or 16 budgets' worth: the budget keeps the head and tail of what is left.
MIN_CLIP = 64 * 1024

# The kinds k8s_get reads (aliases as kubectl spells them). Never secrets: a Secret's values
# are secrets whatever the redactor would make of them.
_KINDS = ("pods", "deployments", "statefulsets", "services", "events", "configmaps")
_KIND_OF = {alias: kind for alias, kind in KIND_ALIASES.items() if kind in _KINDS}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


class IncidentTools:
    """Read-only tools over one Subject and its namespace. Implements `Toolbox`.

    `preview` is the policy gate's preview; `budget` is the most characters one tool output
    may take (as JSON). `invariants` are the Subject's effective invariants (the plugin's with
    the Subject's overrides), evaluated by `observe`; `kubeconfig` is passed to kubectl when
    the operator does not run in a pod.
    """

    def __init__(
        self,
        plugin: SubjectPlugin,
        prometheus: Prometheus | None,
        api_client: k8s.ApiClient,
        namespace: str,
        kubectl: str | Path | None,
        preview: PreviewFn,
        redactor: Redactor,
        budget: int = DEFAULT_BUDGET,
        *,
        invariants: dict[str, Invariant] | None = None,
        kubeconfig: str | Path | None = None,
        kubectl_timeout: float = KUBECTL_TIMEOUT,
    ) -> None:
        self.plugin = plugin
        self.prometheus = prometheus
        self.api_client = api_client
        self.namespace = namespace
        self.kubectl_bin = str(kubectl) if kubectl else None
        self.preview = preview
        self.redactor = redactor
        self.budget = budget
        self.invariants = invariants or {i.name: i for i in type(plugin).invariants}
        self.kubeconfig = str(kubeconfig) if kubeconfig else None
        self.kubectl_timeout = kubectl_timeout
        self._core = core = k8s.CoreV1Api(api_client)
        apps = k8s.AppsV1Api(api_client)
        # kind -> (list in a namespace, read one by name)
        self._calls: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
            "pods": (core.list_namespaced_pod, core.read_namespaced_pod),
            "deployments": (apps.list_namespaced_deployment, apps.read_namespaced_deployment),
            "statefulsets": (apps.list_namespaced_stateful_set, apps.read_namespaced_stateful_set),
            "services": (core.list_namespaced_service, core.read_namespaced_service),
            "events": (core.list_namespaced_event, core.read_namespaced_event),
            "configmaps": (core.list_namespaced_config_map, core.read_namespaced_config_map),
        }

    # -- output discipline ---------------------------------------------------------------------

    async def _finish(self, data: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
        """Bounded, redacted, then clipped to the budget, in a worker thread (redacting a large
        output takes a while, and the event loop serves every Subject)."""
        return await asyncio.to_thread(self._finish_now, data, keep)

    def _finish_now(self, data: dict[str, Any], keep: tuple[str, ...]) -> dict[str, Any]:
        """Keys in `keep` stay structured (e.g. the violations an agent branches on); the rest
        becomes clipped JSON text when the whole does not fit."""
        clean: dict[str, Any] = self.redactor.redact(data, clip_at=max(MIN_CLIP, 16 * self.budget))
        text = json.dumps(clean, default=str)
        if len(text) <= self.budget:
            return clean
        kept = {k: clean[k] for k in keep if k in clean}
        rest = json.dumps({k: v for k, v in clean.items() if k not in kept}, default=str)
        room = self.budget - len(json.dumps(kept, default=str)) - 40
        while True:
            # The clipped text is escaped again when the result is sent as JSON: shrink
            # until the whole fits (a floor keeps something readable if `kept` is large).
            out = {**kept, "truncated": True, "text": truncate(rest, max(room, 200))}
            over = len(json.dumps(out, default=str)) - self.budget
            if over <= 0 or room <= 200:
                return out
            room -= over

    # -- the subject ---------------------------------------------------------------------------

    async def observe(self) -> dict[str, Any]:
        try:
            obs = await self.plugin.observe()
        except Exception as err:  # a plugin's failure is information, not a crash
            raise ToolError(f"observation failed: {type(err).__name__}: {err}") from err
        try:
            violations = self.plugin.evaluate(obs, self.invariants)
        except Exception as err:  # the same: the model learns it, the loop goes on
            raise ToolError(f"evaluating invariants failed: {type(err).__name__}: {err}") from err
        return await self._finish(
            {
                "violations": [v.model_dump(mode="json") for v in violations],
                "observation": obs.model_dump(mode="json"),
            },
            keep=("violations",),
        )

    async def list_actions(self) -> dict[str, Any]:
        specs = action_specs(self.plugin)
        return await self._finish(
            {
                "actions": [
                    {
                        "name": s.name,
                        "description": s.description,
                        "risk": s.risk.value,
                        "reversible": s.reversible,
                        "disrupts_member": s.disrupts_member,
                        "params": compact_schema(s.params.model_json_schema()),
                    }
                    for s in specs
                ]
            }
        )

    async def check_action(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            decision = await self.preview(action, params)
        except Exception as err:  # cannot ask = cannot run
            raise ToolError(f"the policy gate could not be asked: {err}") from err
        return await self._finish(dict(decision))

    # -- PromQL --------------------------------------------------------------------------------

    def _prom(self) -> Prometheus:
        if self.prometheus is None:
            raise ToolError("this Subject has no Prometheus (spec.prometheus is unset)")
        return self.prometheus

    async def promql(self, query: str) -> dict[str, Any]:
        prom = self._prom()
        try:
            samples = await prom.query(query)
        except MetricsError as err:
            raise ToolError(str(err)) from err
        result = [{"metric": labels, "value": value} for labels, value in samples[:MAX_SERIES]]
        return await self._finish(
            {
                "query": query,
                "series": len(samples),
                "result": result,
                **(
                    {"note": f"first {MAX_SERIES} series shown"}
                    if len(samples) > MAX_SERIES
                    else {}
                ),
            }
        )

    async def promql_range(self, query: str, minutes: int, step_seconds: int) -> dict[str, Any]:
        if not 1 <= minutes <= 24 * 60:
            raise ToolError("minutes must be 1 to 1440")
        if step_seconds < 1 or minutes * 60 / step_seconds > MAX_RANGE_POINTS:
            raise ToolError(
                f"step_seconds must be at least 1 and give at most {MAX_RANGE_POINTS} points "
                f"(for {minutes} minutes: step_seconds >= {-(-minutes * 60 // MAX_RANGE_POINTS)})"
            )
        prom = self._prom()
        end = datetime.now(UTC)
        try:
            series = await prom.query_range(
                query, end - timedelta(minutes=minutes), end, timedelta(seconds=step_seconds)
            )
        except MetricsError as err:
            raise ToolError(str(err)) from err
        result = [
            {"metric": labels, "values": [[round(t), v] for t, v in points]}
            for labels, points in series[:MAX_SERIES]
        ]
        return await self._finish({"query": query, "series": len(series), "result": result})

    # -- Kubernetes, the Subject's namespace only ----------------------------------------------

    async def _k8s(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ApiException as err:
            if err.status == 404:
                raise ToolError(f"not found in namespace {self.namespace}") from err
            if err.status == 403:
                raise ToolError(
                    f"forbidden: the operator may not read this ({err.reason})"
                ) from err
            raise ToolError(f"Kubernetes API error {err.status}: {err.reason}") from err
        except Exception as err:  # unreachable API server and the like
            raise ToolError(f"Kubernetes API unreachable: {type(err).__name__}") from err

    async def k8s_get(self, kind: str, name: str | None = None) -> dict[str, Any]:
        canonical = _KIND_OF.get(kind.lower().strip())
        if canonical is None:
            if kind.lower().strip() in ("secret", "secrets"):
                raise ToolError("Secrets are never read")
            raise ToolError(f"kind {kind!r} cannot be read (kinds: {', '.join(_KINDS)})")
        if name is not None and not _NAME.match(name):
            raise ToolError(f"{name!r} is not a valid object name")
        ns = self.namespace
        if name is None:
            listed = await self._k8s(self._lister(canonical), ns, limit=MAX_LIST_ITEMS)
            raw = self.api_client.sanitize_for_serialization(listed)
            items = [_summary(canonical, item) for item in raw.get("items", [])]
            more = bool((raw.get("metadata") or {}).get("continue"))
            return await self._finish(
                {
                    "kind": canonical,
                    "namespace": ns,
                    "items": items,
                    **({"note": f"first {MAX_LIST_ITEMS} shown"} if more else {}),
                }
            )
        obj = await self._k8s(self._reader(canonical), name, ns)
        body = _slim(self.api_client.sanitize_for_serialization(obj))
        events: list[dict[str, Any]] = []
        if canonical != "events":  # like kubectl describe: the object and what happened to it
            listed = await self._k8s(
                self._core.list_namespaced_event,
                ns,
                field_selector=f"involvedObject.name={name}",
                limit=MAX_LIST_ITEMS,
            )
            raw = self.api_client.sanitize_for_serialization(listed)
            events = [_summary("events", e) for e in raw.get("items", [])]
        return await self._finish({"kind": canonical, "object": body, "events": events})

    def _lister(self, kind: str) -> Callable[..., Any]:
        return self._calls[kind][0]

    def _reader(self, kind: str) -> Callable[..., Any]:
        return self._calls[kind][1]

    async def k8s_events(self) -> dict[str, Any]:
        listed = await self._k8s(self._core.list_namespaced_event, self.namespace, limit=500)
        raw = self.api_client.sanitize_for_serialization(listed)
        events = [_summary("events", e) for e in raw.get("items", [])]
        events.sort(key=lambda e: e.get("last") or "", reverse=True)
        return await self._finish({"namespace": self.namespace, "events": events[:MAX_LIST_ITEMS]})

    async def pod_logs(self, pod: str, tail: int = 100) -> dict[str, Any]:
        if not _NAME.match(pod):
            raise ToolError(f"{pod!r} is not a valid pod name")
        if not 1 <= tail <= MAX_LOG_TAIL:
            raise ToolError(f"tail must be 1 to {MAX_LOG_TAIL}")
        obj = await self._k8s(self._core.read_namespaced_pod, pod, self.namespace)
        containers = [c.name for c in (obj.spec.containers or [])]
        logs: dict[str, str] = {}
        notes: dict[str, str] = {}
        for container in containers[:MAX_LOG_CONTAINERS]:
            try:
                logs[container], note = await self._log(pod, container, tail)
            except ToolError as err:  # one container's missing log is not the pod's
                logs[container] = f"(no log: {err})"
                continue
            if note:
                notes[container] = note
        if len(containers) > MAX_LOG_CONTAINERS:
            notes["(pod)"] = f"first {MAX_LOG_CONTAINERS} of {len(containers)} containers shown"
        return await self._finish(
            {"pod": pod, "tail": tail, "logs": logs, **({"cut": notes} if notes else {})}
        )

    async def _log(self, pod: str, container: str, tail: int) -> tuple[str, str | None]:
        """The last `tail` lines of one container's log, at most MAX_LOG_BYTES of them (the
        API server stops there), with a note when lines were left out."""
        text, size = await self._read_log(pod, container, tail)
        if _fits(text, size, tail):
            return text, None
        # The server sent the *oldest* of the last `tail` lines up to the limit, the last one
        # cut. Ask again for as many of the newest lines as came whole.
        whole = text.count("\n")
        if 1 <= whole < tail:
            newest, size = await self._read_log(pod, container, whole)
            if _fits(newest, size, whole):
                return newest, (
                    f"only the last {whole} lines fit in {MAX_LOG_BYTES} bytes "
                    f"(of the {tail} asked for)"
                )
            text = newest
        # Still too long: whole lines only, so that no line (nor a secret on it) is half-shown.
        text = text[: text.rfind("\n") + 1]
        return text, (
            f"cut at {MAX_LOG_BYTES} bytes: these are the oldest of the lines asked "
            "for; ask for fewer lines (tail) to see the newest"
        )

    async def _read_log(self, pod: str, container: str, tail: int) -> tuple[str, int]:
        """(the log as text, its size in bytes). Read raw: the client would decode it as
        UTF-8 and fail the whole read on one bad byte, and a log need not be UTF-8 (a binary
        dump, Latin-1), nor end on a character (limitBytes cuts where it cuts)."""
        resp = await self._k8s(
            self._core.read_namespaced_pod_log,
            pod,
            self.namespace,
            container=container,
            tail_lines=tail,
            limit_bytes=MAX_LOG_BYTES,
            _preload_content=False,
        )
        raw = await asyncio.to_thread(_read_body, resp, MAX_LOG_BYTES)
        return raw.decode(errors="replace"), len(raw)

    # -- kubectl, reads only -------------------------------------------------------------------

    async def kubectl(self, argv: list[str]) -> dict[str, Any]:
        try:
            command = read_command(argv, self.namespace)
        except KubectlRefused as err:
            raise ToolError(str(err)) from err
        args = _bounded(command.argv)
        if self.kubectl_bin is None:
            raise ToolError("kubectl is not available to this operator")
        full = [self.kubectl_bin, *args]
        if self.kubeconfig:
            full.insert(2, f"--kubeconfig={self.kubeconfig}")
        # No shell, no stdin, and only the environment kubectl needs to find the API server.
        env = kubectl_env()
        if self.kubeconfig:
            env.pop("KUBECONFIG", None)
        proc = await asyncio.create_subprocess_exec(
            *full,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )

        def stop() -> None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

        assert proc.stdout is not None and proc.stderr is not None
        try:
            (stdout, out_cut), (stderr, err_cut) = await asyncio.wait_for(
                asyncio.gather(
                    _read_at_most(proc.stdout, MAX_KUBECTL_STDOUT, stop),
                    _read_at_most(proc.stderr, MAX_KUBECTL_STDERR, stop),
                ),
                self.kubectl_timeout,
            )
            await proc.wait()
        except TimeoutError:
            stop()
            await proc.wait()
            raise ToolError(f"kubectl took longer than {self.kubectl_timeout:g}s") from None
        except asyncio.CancelledError:
            stop()
            raise
        out: dict[str, Any] = {"argv": args, "exit_code": proc.returncode}
        if out_cut or err_cut:
            out["cut"] = (
                f"kubectl was stopped after {MAX_KUBECTL_STDOUT} bytes of output"
                if out_cut
                else f"kubectl was stopped after {MAX_KUBECTL_STDERR} bytes of errors"
            ) + "; what came before is shown (ask for less: a name, a selector, --tail)"
        out["stdout"] = await asyncio.to_thread(_parsed, args, stdout, out_cut)
        out["stderr"] = stderr.decode(errors="replace")
        return await self._finish(out, keep=("argv", "exit_code", "cut"))


# Output formats a read may use: templates (jsonpath, go-template, custom-columns) print values
# without the key names that redaction relies on, or under names the model chooses.
_PLAIN_OUTPUTS = ("json", "yaml", "wide", "name")


def _bounded(argv: list[str]) -> list[str]:
    """The read's argv with what it prints bounded: no template output format, and
    `kubectl logs` with at most MAX_LOG_BYTES (`--limit-bytes`). ToolError otherwise."""
    limit_given = False
    for n, arg in enumerate(argv):
        value = argv[n + 1] if n + 1 < len(argv) else ""
        if arg in ("-o", "--output") and value not in _PLAIN_OUTPUTS:
            raise ToolError(
                f"output format {value!r} is not allowed here: templates print values without "
                "their key names, so secrets among them could not be recognised and masked. "
                f"Use -o {', -o '.join(_PLAIN_OUTPUTS)} (secrets are masked by name in JSON "
                "and YAML)"
            )
        if arg == "--template":
            raise ToolError("--template is not allowed: use -o json or -o yaml")
        if arg == "--limit-bytes":
            limit_given = True
            if not value.isdigit() or not 1 <= int(value) <= MAX_LOG_BYTES:
                raise ToolError(f"--limit-bytes must be 1 to {MAX_LOG_BYTES}")
    if argv and argv[0] == "logs" and not limit_given:
        return [argv[0], f"--limit-bytes={MAX_LOG_BYTES}", *argv[1:]]
    return list(argv)


async def _read_at_most(
    stream: asyncio.StreamReader, limit: int, stop: Callable[[], None]
) -> tuple[bytes, bool]:
    """What the stream yields, up to `limit` bytes; past that, `stop()` the writer. Returns
    (bytes, whether it was cut), the bytes cut back to the last whole line."""
    buf = bytearray()
    while chunk := await stream.read(65536):
        buf += chunk
        if len(buf) > limit:
            stop()
            kept = bytes(buf[:limit])
            return kept[: kept.rfind(b"\n") + 1], True
    return bytes(buf), False


def _parsed(argv: list[str], stdout: bytes, cut: bool) -> Any:
    """JSON or YAML output as data, so that redaction sees every key and every `{name,
    value}` pair whatever the layout (and the JSON strings inside, such as kubectl's
    last-applied-configuration); anything else, or output that does not parse, as text.
    YAML only with libyaml: the pure-Python parser is too slow for a megabyte."""
    text = stdout.decode(errors="replace")
    output = next((b for a, b in itertools.pairwise(argv) if a in ("-o", "--output")), None)
    if cut or output not in ("json", "yaml"):
        return text
    try:
        if output == "json":
            return json.loads(text)
        loader = getattr(yaml, "CSafeLoader", None)
        return text if loader is None else yaml.load(text, Loader=loader)  # a safe loader
    except (ValueError, yaml.YAMLError):
        return text


def _read_body(resp: Any, limit: int) -> bytes:
    """At most `limit` bytes of a raw (urllib3) response, whatever the server sends."""
    try:
        raw: bytes = resp.read(limit + 1)
    except Exception as err:  # the connection dropped mid-body
        resp.close()
        raise ToolError(f"the log could not be read: {type(err).__name__}") from err
    if len(raw) > limit:  # more than asked for: the rest is never read
        resp.close()
        return raw[:limit]
    resp.release_conn()
    return raw


def _fits(log: str, size: int, lines: int) -> bool:
    """Whether a log read with limitBytes came whole (`size`: its bytes): under the limit, or
    all the lines."""
    return size < MAX_LOG_BYTES or (log.endswith("\n") and log.count("\n") >= lines)


def _slim(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    meta.pop("managedFields", None)
    annotations = meta.get("annotations") or {}
    for key in _DROPPED_ANNOTATIONS:
        annotations.pop(key, None)
    return obj


def _summary(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    """One line's worth of an object, like `kubectl get` shows it."""
    meta = item.get("metadata") or {}
    spec = item.get("spec") or {}
    status = item.get("status") or {}
    out: dict[str, Any] = {"name": meta.get("name")}
    if kind == "pods":
        statuses = status.get("containerStatuses") or []
        out |= {
            "phase": status.get("phase"),
            "ready": f"{sum(1 for c in statuses if c.get('ready'))}/{len(statuses)}",
            "restarts": sum(c.get("restartCount", 0) for c in statuses),
            "node": spec.get("nodeName"),
            "started": status.get("startTime"),
        }
        waiting = [
            f"{c.get('name')}: {(c.get('state') or {}).get('waiting', {}).get('reason')}"
            for c in statuses
            if (c.get("state") or {}).get("waiting")
        ]
        if waiting:
            out["waiting"] = waiting
    elif kind in ("deployments", "statefulsets"):
        out |= {
            "replicas": spec.get("replicas"),
            "ready": status.get("readyReplicas", 0),
            "updated": status.get("updatedReplicas", 0),
            "available": status.get("availableReplicas", 0),
        }
    elif kind == "services":
        out |= {
            "type": spec.get("type"),
            "cluster_ip": spec.get("clusterIP"),
            "ports": [f"{p.get('port')}/{p.get('protocol')}" for p in spec.get("ports") or []],
            "selector": spec.get("selector"),
        }
    elif kind == "events":
        involved = item.get("involvedObject") or {}
        out = {
            "type": item.get("type"),
            "reason": item.get("reason"),
            "object": f"{involved.get('kind')}/{involved.get('name')}",
            "message": item.get("message"),
            "count": item.get("count"),
            "last": item.get("lastTimestamp")
            or item.get("eventTime")
            or meta.get("creationTimestamp"),
        }
    elif kind == "configmaps":
        out["keys"] = sorted((item.get("data") or {}).keys())
    return out
