"""The local demo: a real control plane, the rate limiter under supervisord, the operator, and
one incident from fault to verified fix.

    hack/demo.sh          up: everything, then a counter-drift fault, watched until Resolved
    hack/demo.sh down     stop the operator, the stack and the cluster

State lives under .work/demo/ (git-ignored): the stack, the operator's log and pid, the audit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
import yaml

from aiops.cluster import LocalCluster
from aiops.cluster.tools import tools_bin_dir
from ratelimiter.localstack import LocalStack

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".work" / "demo"
NAMESPACE = "demo"
STACK_BASE_PORT = int(os.environ.get("AIOPS_DEMO_BASE_PORT", "24100"))
KEY = "user-42"


def say(text: str) -> None:
    print(f"\033[1m==> {text}\033[0m", flush=True)


def kubectl(cluster: LocalCluster, *args: str, input: str | None = None) -> str:
    proc = subprocess.run(
        [str(tools_bin_dir(build=False) / "kubectl"), "--kubeconfig", str(cluster.kubeconfig),
         *args],
        input=input, capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def subject(stack: LocalStack) -> dict[str, Any]:
    urls = stack.urls
    return {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "Subject",
        "metadata": {"name": "ratelimiter", "namespace": NAMESPACE},
        "spec": {
            "type": "ratelimiter",
            "config": {"adminUrls": list(urls.nodes.values()), "redisUrl": urls.redis,
                       "toxiproxyUrl": urls.toxiproxy, "latencyWindow": "10s"},
            "prometheus": {"url": urls.prometheus},
            "workload": {"kind": "supervisor", "supervisor": {"url": f"{urls.supervisor}/RPC2"}},
            "interval": "2s",
            "autonomy": os.environ.get("AIOPS_DEMO_AUTONOMY", "execute"),
        },
    }


def operator_pid() -> int | None:
    try:
        pid = int((WORK / "operator.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def start_operator(cluster: LocalCluster) -> None:
    if operator_pid() is not None:
        return
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig),
           "AIOPS_AUDIT_DIR": str(WORK / "audit"), "AIOPS_OPERATOR_NAMESPACE": NAMESPACE,
           "AIOPS_KUBECTL": str(tools_bin_dir(build=False) / "kubectl")}
    log = (WORK / "operator.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiops.cli.main", "operator", "run", "-n", NAMESPACE],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    (WORK / "operator.pid").write_text(str(proc.pid))


def wait(what: str, probe: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(1)
    raise SystemExit(f"timed out waiting for {what}: see {WORK / 'operator.log'}")


def get(cluster: LocalCluster, *args: str) -> Any:
    return json.loads(kubectl(cluster, "get", "-n", NAMESPACE, *args, "-o", "json"))


def up() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    say("local control plane (kube-apiserver, etcd, controller-manager, scheduler, kwok)")
    cluster = LocalCluster()
    cluster.up()
    for path in (ROOT / "crds", ROOT / "crds" / "rbac"):
        kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(path))
    kubectl(cluster, "wait", "--for=condition=Established", "crd", "-l",
            "app.kubernetes.io/part-of=aiops", "--timeout=60s")
    if NAMESPACE not in kubectl(cluster, "get", "namespaces", "-o", "name"):
        kubectl(cluster, "create", "namespace", NAMESPACE)

    say("rate limiter: Redis, toxiproxy, 3 nodes, Prometheus, under supervisord")
    stack = LocalStack(WORK / "stack", STACK_BASE_PORT)
    stack.up()
    stack.start_program("loadgen")
    kubectl(cluster, "apply", "-f", "-", input=yaml.safe_dump(subject(stack)))

    say("operator (log: .work/demo/operator.log)")
    start_operator(cluster)
    wait("the Subject to be Healthy", lambda: (get(cluster, "subject", "ratelimiter")
                                              .get("status") or {}).get("health") == "Healthy")
    print(kubectl(cluster, "get", "subjects", "-n", NAMESPACE))

    say(f"fault: entries dated an hour ahead of Redis's clock in the log of key {KEY!r}")
    r = redis.Redis.from_url(stack.urls.redis)
    seconds, micros = r.time()
    ahead = int(seconds) * 1_000_000 + int(micros) + 3_600_000_000
    r.zadd(f"rl:w:{KEY}", {f"demo-drift-{i}": ahead + i for i in range(12)})
    t0 = time.monotonic()

    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2))

    def incident() -> dict[str, Any] | None:
        # This run's incident for the key (a rerun of the demo leaves older ones behind).
        items = [i for i in get(cluster, "incidents")["items"]
                 if i["spec"].get("entity") == KEY
                 and i["metadata"]["creationTimestamp"] >= started]
        return items[-1] if items else None

    inc = wait("the incident", incident)
    name = inc["metadata"]["name"]
    say(f"incident {name} opened {time.monotonic() - t0:.1f} s after the fault")
    seen: set[str] = set()

    def done() -> dict[str, Any] | None:
        obj = get(cluster, "incident", name)
        for t in (obj.get("status") or {}).get("timeline", []):
            if t["time"] + t.get("phase", "") not in seen:
                seen.add(t["time"] + t.get("phase", ""))
                print(f"    {t['time']}  {t.get('phase', ''):16} {t['message']}")
        return obj if obj["status"].get("phase") in ("Resolved", "Escalated") else None

    final = wait("the incident to close", done, timeout=180)
    say(f"{final['status']['phase']} {time.monotonic() - t0:.1f} s after the fault")
    print(kubectl(cluster, "get", "aiops", "-n", NAMESPACE))
    print(f"""Look around:
  export KUBECONFIG={cluster.kubeconfig}
  kubectl get aiops -n {NAMESPACE}
  kubectl describe incident -n {NAMESPACE} {name}
  AIOPS_AUDIT_DIR={WORK / 'audit'} .venv/bin/aiops audit show {name} -n {NAMESPACE}
  AIOPS_AUDIT_DIR={WORK / 'audit'} .venv/bin/aiops audit verify
Stop everything: hack/demo.sh down""")


def down() -> None:
    pid = operator_pid()
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)
        say(f"operator stopped (pid {pid})")
    if (WORK / "stack").exists():
        LocalStack.existing(WORK / "stack").down()
        say("rate limiter stack stopped")
    LocalCluster().down()
    say("cluster stopped")


if __name__ == "__main__":
    if sys.argv[1:] == ["down"]:
        down()
    else:
        up()
