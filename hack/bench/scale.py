#!/usr/bin/env python
"""Scale benchmark: how the operator's cost grows with the number of Subjects.

    .venv/bin/python hack/bench/scale.py --baseline REV       # 10, 100, 1000 Subjects (~20 min)
    .venv/bin/python hack/bench/scale.py --subjects 10,100 --window 60 --pods 1000   # quicker

What runs, all real but the subject: a private local control plane (kwokctl, on a free port
span; `--nodes` simulated nodes) holding `--pods` pods that kwok runs on them, and
`aiops operator run` as its own process in a namespace of its own per level, watching N
Subjects of the `minimal` plugin (examples/plugins/minimal: each Subject one directory of
member files, observed from disk) at `--interval`. Incidents arrive at a steady `--rate`: the
benchmark marks a healthy Subject's member down in its file; the subject loop opens an
Incident at its next cycle and the runbook agent starts the member again under the policy
gate (autonomy `execute`), and verifies it.

What it measures, over `--window` seconds once every Subject was observed once:
- CPU: the operator process's user+system seconds per second (1.0 = one core busy);
- RSS: its peak resident memory, sampled every second;
- lag: how late an observation lands after it is due (a Subject's status write of a new
  `lastObservationTime`, seen on a watch, minus the previous one's plus the interval);
- handling: an Incident's `detectedAt` to its fix having run (the timeline entering
  Verifying), and to Resolved;
- API requests/s: the API server's own `apiserver_request_total` for what only the operator
  asks for (the aiops.dev resources, Events, ConfigMaps, Secrets; kwok's pod and node traffic
  is left out).

`--baseline REV` runs a level also with the operator's code as of git revision REV (extracted
with `git archive`, put first on PYTHONPATH), in the same run on the same cluster, so a change
is measured before and after under the same load (`--baseline-at` says at which levels).

It writes the table (Markdown) and the growth curves (PNG) to `--out`. Not a test, not in CI:
numbers on a shared 2-core machine move with whatever else runs; compare within one run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import psutil
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch

from aiops.cluster import LocalCluster
from aiops.cluster.tools import tools_bin_dir

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tests.fixtures.aiops_api import install_api  # noqa: E402
from tests.fixtures.cluster import ClusterHandle  # noqa: E402
from tests.fixtures.demo_system import free_cluster_port  # noqa: E402

GROUP, VERSION = "aiops.dev", "v1alpha1"
MEMBER = "m"
# What only the operator asks the API server for (the benchmark's own watch and lists are
# outside the window, but for its one long watch).
OPERATOR_RESOURCES = {"subjects", "incidents", "chaos", "approvals", "events", "configmaps"}


@dataclass
class Level:
    variant: str  # "current", or the baseline's short revision
    subjects: int
    startup_s: float = 0.0  # operator start to every Subject observed once
    cpu_cores: float = 0.0
    rss_peak_mib: float = 0.0
    lag_p50_s: float = 0.0
    lag_p99_s: float = 0.0
    observations_per_s: float = 0.0
    expected_per_s: float = 0.0
    api_rps: float = 0.0
    incidents: int = 0
    handled_p50_s: float = 0.0
    handled_p99_s: float = 0.0
    resolved_p50_s: float = 0.0
    resolved_p99_s: float = 0.0
    unresolved: int = 0
    notes: list[str] = field(default_factory=list)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- the cluster ------------------------------------------------------------------------------


def create_pods(core: k8s.CoreV1Api, count: int, nodes: list[str]) -> float:
    """`count` pods bound to kwok's nodes (round robin: no scheduler in the way), in their own
    namespace, 10 per app label; returns seconds until kwok reports them all Running."""
    ns = "bench-pods"
    core.create_namespace(cast(Any, {"metadata": {"name": ns}}))
    started = time.monotonic()

    def one(i: int) -> None:
        body = {
            "metadata": {"name": f"pod-{i}", "labels": {"app": f"app-{i // 10}"}},
            "spec": {
                "nodeName": nodes[i % len(nodes)],
                "containers": [{"name": "c", "image": "example.invalid/app:1"}],
                "tolerations": [{"operator": "Exists"}],
            },
        }
        for attempt in range(5):
            try:
                core.create_namespaced_pod(ns, cast(Any, body))
                return
            except k8s.ApiException as err:
                if err.status == 409:
                    return
                time.sleep(1 + attempt)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(count)))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        running = sum(
            1 for p in core.list_namespaced_pod(ns, field_selector="status.phase=Running").items
        )
        if running >= count:
            break
        time.sleep(5)
    return time.monotonic() - started


def request_counts(kubeconfig: Path) -> dict[str, float]:
    """apiserver_request_total of the operator's resources, summed by verb."""
    kubectl = tools_bin_dir(build=False) / "kubectl"
    text = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), "get", "--raw", "/metrics"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels, value = line.rsplit(" ", 1)
        fields = dict(
            kv.split("=", 1) for kv in labels[len("apiserver_request_total{") : -1].split(",")
        )
        resource = fields.get("resource", "").strip('"')
        if resource in OPERATOR_RESOURCES:
            verb = fields.get("verb", "").strip('"')
            out[verb] = out.get(verb, 0.0) + float(value)
    return out


# -- one level --------------------------------------------------------------------------------


class Watcher(threading.Thread):
    """Records when each Subject's new lastObservationTime arrives (monotonic clock)."""

    def __init__(self, custom: k8s.CustomObjectsApi, ns: str) -> None:
        super().__init__(daemon=True)
        self.custom, self.ns = custom, ns
        self.seen: dict[str, str] = {}
        self.arrivals: dict[str, list[float]] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            w = k8s_watch.Watch()
            try:
                for ev in w.stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.ns,
                    "subjects",
                    timeout_seconds=30,
                ):
                    obj = ev["object"]
                    name = obj["metadata"]["name"]
                    last = (obj.get("status") or {}).get("lastObservationTime")
                    if last and self.seen.get(name) != last:
                        self.seen[name] = last
                        self.arrivals.setdefault(name, []).append(time.monotonic())
                    if self.stop.is_set():
                        break
            except Exception:  # a dropped watch: start another
                time.sleep(1)


def subject_body(name: str, directory: Path, interval: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Subject",
        "metadata": {"name": name},
        "spec": {
            "type": "minimal",
            "config": {"directory": str(directory), "members": [MEMBER]},
            "interval": f"{interval}s",
            "autonomy": "execute",
            "cooldown": "0s",
        },
    }


def write_member(directory: Path, up: bool) -> None:
    tmp = directory / f"{MEMBER}.tmp"
    tmp.write_text(json.dumps({"up": up}))
    os.replace(tmp, directory / f"{MEMBER}.json")


def run_level(
    args: argparse.Namespace,
    cluster: LocalCluster,
    api: k8s.ApiClient,
    variant: str,
    pythonpath: str,
    n: int,
    work: Path,
) -> Level:
    level = Level(variant=variant, subjects=n, expected_per_s=n / args.interval)
    core, custom = k8s.CoreV1Api(api), k8s.CustomObjectsApi(api)
    ns = f"bench-{variant}-{n}-{uuid.uuid4().hex[:4]}".lower()
    core.create_namespace(cast(Any, {"metadata": {"name": ns}}))
    dirs = {}
    for i in range(n):
        d = work / ns / f"s{i}"
        d.mkdir(parents=True)
        write_member(d, True)
        dirs[f"s{i}"] = d
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda item: custom.create_namespaced_custom_object(
                    GROUP, VERSION, ns, "subjects", subject_body(item[0], item[1], args.interval)
                ),
                dirs.items(),
            )
        )
    watcher = Watcher(custom, ns)
    watcher.start()
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "AIOPS_AUDIT_DIR": str(work / ns / "audit"),
        "AIOPS_OPERATOR_NAMESPACE": ns,
        "AIOPS_VERIFY_TIMEOUT": "120",
    }
    env.pop("ANTHROPIC_API_KEY", None)  # the runbook investigates
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    log = (work / f"operator-{ns}.log").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiops.cli.main", "operator", "run", "-n", ns],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    ps = psutil.Process(proc.pid)
    try:
        deadline = started + args.startup_timeout
        while len(watcher.seen) < n:
            if time.monotonic() > deadline or proc.poll() is not None:
                level.notes.append(f"only {len(watcher.seen)} of {n} observed at start")
                break
            time.sleep(1)
        level.startup_s = time.monotonic() - started
        print(f"  {variant} {n}: every Subject observed after {level.startup_s:.0f} s", flush=True)

        # The window: samples every second, incidents at a steady rate.
        requests0 = request_counts(cluster.kubeconfig)
        cpu0 = sum(ps.cpu_times()[:2])
        t0 = time.time()
        w0 = time.monotonic()
        rss_peak = 0
        broken: dict[str, float] = {}
        injected: list[str] = []
        next_incident = w0
        rng = random.Random(n)
        while time.monotonic() - w0 < args.window:
            rss_peak = max(rss_peak, ps.memory_info().rss)
            now = time.monotonic()
            if now >= next_incident:
                next_incident += 1.0 / args.rate
                # Healed subjects come back into the pool (their file says up again).
                for name in [s for s in broken if '"up": true' in _read(dirs[s])]:
                    del broken[name]
                healthy = [s for s in dirs if s not in broken]
                if healthy:
                    name = rng.choice(healthy)
                    write_member(dirs[name], False)
                    broken[name] = time.time()
                    injected.append(name)
                else:
                    level.notes.append("no healthy Subject to break: an incident skipped")
            time.sleep(max(0.0, min(1.0, next_incident - time.monotonic())))
        t1, w1 = time.time(), time.monotonic()
        cpu1 = sum(ps.cpu_times()[:2])
        requests1 = request_counts(cluster.kubeconfig)
        level.cpu_cores = (cpu1 - cpu0) / (t1 - t0)
        level.rss_peak_mib = rss_peak / 2**20
        level.api_rps = sum(requests1.values()) - sum(requests0.values())
        level.api_rps /= t1 - t0

        lags, count = [], 0
        for times in watcher.arrivals.values():
            inside = [t for t in times if w0 <= t <= w1]
            count += len(inside)
            before = [t for t in times if t < w0][-1:]
            seq = before + inside
            lags += [max(0.0, b - a - args.interval) for a, b in itertools.pairwise(seq)]
        level.observations_per_s = count / (t1 - t0)
        level.lag_p50_s, level.lag_p99_s = pct(lags, 0.5), pct(lags, 0.99)

        # Give the last incidents time to finish, then read every one.
        time.sleep(args.settle)
        handled: list[float] = []
        resolved: list[float] = []
        listed: Any = custom.list_namespaced_custom_object(GROUP, VERSION, ns, "incidents")
        items: list[dict[str, Any]] = listed["items"]
        for inc in items:
            st = inc.get("status") or {}
            if not st.get("detectedAt"):
                continue
            detected = ts(st["detectedAt"])
            if detected < t0:
                continue
            level.incidents += 1
            # The first time each phase was entered.
            entered = {e.get("phase"): ts(e["time"]) for e in reversed(st.get("timeline") or [])}
            if "Verifying" in entered:
                handled.append(entered["Verifying"] - detected)
            if "Resolved" in entered:
                resolved.append(entered["Resolved"] - detected)
            else:
                level.unresolved += 1
        level.handled_p50_s, level.handled_p99_s = pct(handled, 0.5), pct(handled, 0.99)
        level.resolved_p50_s, level.resolved_p99_s = pct(resolved, 0.5), pct(resolved, 0.99)
        level.notes.append(f"{len(injected)} faults injected")
    finally:
        watcher.stop.set()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    level.notes = sorted(set(level.notes))
    return level


def _read(directory: Path) -> str:
    try:
        return (directory / f"{MEMBER}.json").read_text()
    except OSError:
        return ""


# -- the report -------------------------------------------------------------------------------


def table(levels: list[Level]) -> str:
    rows = [
        "| code | Subjects | CPU (cores) | peak RSS (MiB) | lag p50 / p99 (s) | observations/s "
        "(due) | API requests/s | incidents | handled p50 / p99 (s) | resolved p50 / p99 (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for lv in levels:
        rows.append(
            f"| {lv.variant} | {lv.subjects} | {lv.cpu_cores:.2f} | {lv.rss_peak_mib:.0f} "
            f"| {lv.lag_p50_s:.1f} / {lv.lag_p99_s:.1f} "
            f"| {lv.observations_per_s:.1f} ({lv.expected_per_s:.1f}) | {lv.api_rps:.1f} "
            f"| {lv.incidents} | {lv.handled_p50_s:.2f} / {lv.handled_p99_s:.2f} "
            f"| {lv.resolved_p50_s:.1f} / {lv.resolved_p99_s:.1f} |"
        )
    return "\n".join(rows) + "\n"


def charts(levels: list[Level], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("cpu_cores", "CPU (cores)"),
        ("rss_peak_mib", "peak RSS (MiB)"),
        ("lag_p99_s", "observation lag p99 (s)"),
        ("handled_p99_s", "incident handled p99 (s)"),
        ("api_rps", "API requests/s"),
        ("startup_s", "start to all observed (s)"),
    )
    goals = {"cpu_cores": 1.0, "rss_peak_mib": 500.0, "handled_p99_s": 1.0}
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        if key in goals:
            ax.axhline(goals[key], linestyle="--", color="grey", label="goal")
        for variant in dict.fromkeys(lv.variant for lv in levels):
            pts = sorted((lv.subjects, getattr(lv, key)) for lv in levels if lv.variant == variant)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=variant)
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("Subjects")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes.flat[0].legend()
    fig.tight_layout()
    path = out / "scale-growth.png"
    fig.savefig(path, dpi=90)
    return path


def baseline_tree(rev: str, work: Path) -> tuple[str, str]:
    """The operator's package as of `rev`, extracted; returns (its PYTHONPATH, short rev)."""
    short = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", rev],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dest = work / f"baseline-{short}"
    dest.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "operator/aiops"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return str(dest / "operator"), short


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--subjects", default="10,100,1000", help="levels, comma-separated")
    p.add_argument("--interval", type=int, default=30, help="every Subject's interval, s")
    p.add_argument("--window", type=float, default=90, help="seconds measured per level")
    p.add_argument("--rate", type=float, default=0.2, help="incidents per second")
    p.add_argument("--settle", type=float, default=20, help="seconds for the last incidents")
    p.add_argument("--startup-timeout", type=float, default=300)
    p.add_argument("--pods", type=int, default=10_000)
    p.add_argument("--nodes", type=int, default=20)
    p.add_argument("--baseline", default="", help="also run the operator of this git revision")
    p.add_argument("--baseline-at", default="1000", help="levels the baseline runs at")
    p.add_argument("--current-first", action="store_true", help="the baseline's levels last")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "scale")
    p.add_argument("--replot", type=Path, help="only redraw the table and curves of this JSON")
    args = p.parse_args()
    if args.replot:
        replotted = [Level(**d) for d in json.loads(args.replot.read_text())]
        print(table(replotted))
        print(f"wrote {charts(replotted, args.out)}")
        return
    levels_n = [int(x) for x in args.subjects.split(",")]

    # SIGTERM (and SIGINT, which a shell's background job ignores) stop the run through the
    # `finally`s: the operator stopped, the cluster down, the files removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="aiops-bench-scale-"))
    plan: list[tuple[str, str, int]] = [("current", "", n) for n in levels_n]
    if args.baseline:
        path, short = baseline_tree(args.baseline, work)
        at = {int(x) for x in args.baseline_at.split(",")}
        base = [(short, path, n) for n in levels_n if n in at]
        # Baseline first by default; --current-first the other way round, so two runs in
        # opposite orders show how much the machine's load drifting in between moved things.
        plan = plan + base if args.current_first else base + plan

    kubectl = tools_bin_dir(build=False) / "kubectl"
    cluster = LocalCluster(
        f"scale-{uuid.uuid4().hex[:6]}",
        port=free_cluster_port(),
        nodes=args.nodes,
        state_dir=work,
    )
    levels: list[Level] = []
    try:
        t = time.monotonic()
        cluster.up()
        install_api(ClusterHandle(cluster.kubeconfig, kubectl))
        api = k8s_config.new_client_from_config(config_file=str(cluster.kubeconfig))
        api.configuration.connection_pool_maxsize = 32
        core = k8s.CoreV1Api(api)
        nodes = [str(n.metadata.name) for n in core.list_node().items if n.metadata]
        print(f"cluster up with {len(nodes)} kwok nodes in {time.monotonic() - t:.0f} s")
        if args.pods:
            pods_s = create_pods(core, args.pods, nodes)
            print(f"{args.pods} pods Running in {pods_s:.0f} s", flush=True)
        for variant, path, n in plan:
            levels.append(run_level(args, cluster, api, variant, path, n, work))
            print(table(levels[-1:]).splitlines()[-1], flush=True)
    finally:
        cluster.down()
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    print()
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"interval {args.interval} s, {args.window:.0f} s window, {args.rate}/s incidents, "
        f"{args.pods} pods"
    )
    print(table(levels))
    for lv in levels:
        if lv.notes:
            print(f"{lv.variant} {lv.subjects}: {'; '.join(lv.notes)}")
    (args.out / "scale-results.json").write_text(
        json.dumps([asdict(lv) for lv in levels], indent=1) + "\n"
    )
    print(f"wrote {charts(levels, args.out)}")


if __name__ == "__main__":
    main()
