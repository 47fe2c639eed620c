"""The demo Prometheus of the aiops-operator chart: its relabelling, run by a real Prometheus.

Kubernetes pod discovery cannot run here (Debian's Prometheus is built without it, and pods are
simulated), so the chart's scrape job runs as rendered except that its targets come from a file
carrying the same `__meta_kubernetes_pod_*` labels pod discovery gives: a TiKV pod with its two
container ports, a PD pod, a rate limiter node, and an unannotated Redis pod. What comes out is
what the plugins' PromQL selects on kind: one target per pod on the annotated port, `job` from
the pod's component or name label, and `pod` and `namespace` labels. Targets are on 127.0.0.x
ports where nothing listens, so every scrape fails and `up` is 0, which is all we query.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.fixtures.prometheus import start_prometheus
from tests.unit.charts.helm import NAMESPACE, template
from tikv_subject.config import TikvConfig
from tikv_subject.queries import build


def pod_target(
    address: str, pod: str, namespace: str, labels: dict[str, str], annotations: dict[str, str]
) -> dict[str, Any]:
    meta = {
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_pod_name": pod,
        "__meta_kubernetes_pod_phase": "Running",
    }
    for k, v in labels.items():
        meta["__meta_kubernetes_pod_label_" + k.replace(".", "_").replace("/", "_")] = v
    for k, v in annotations.items():
        meta["__meta_kubernetes_pod_annotation_" + k.replace(".", "_").replace("/", "_")] = v
    return {"targets": [address], "labels": meta}


def scrape(port: int, path: str = "/metrics") -> dict[str, str]:
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": path,
    }


TIKV = {"app.kubernetes.io/component": "tikv", "app.kubernetes.io/instance": "tikv"}
PD = {"app.kubernetes.io/component": "pd", "app.kubernetes.io/instance": "tikv"}
RL = {"app.kubernetes.io/name": "ratelimiter", "app.kubernetes.io/instance": "rl"}
REDIS = {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": "rl"}

PODS = [
    # Pod discovery gives one target per container port: TiKV has two.
    pod_target("127.0.0.2:20160", "tikv-tikv-0", "tikv", TIKV, scrape(20180)),
    pod_target("127.0.0.2:20180", "tikv-tikv-0", "tikv", TIKV, scrape(20180)),
    pod_target("127.0.0.3:2379", "tikv-pd-0", "tikv", PD, scrape(2379)),
    pod_target("127.0.0.4:8080", "rl-ratelimiter-0", "ratelimiter", RL, scrape(8080)),
    pod_target("127.0.0.5:6379", "rl-redis-abc", "ratelimiter", REDIS, {}),
]


def query(url: str, promql: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5)
    r.raise_for_status()
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


def test_scrape_job_labels_targets_as_the_plugins_select_them(tmp_path: Path) -> None:
    rendered = template(
        "aiops-operator",
        {
            "prometheus": {"enabled": True, "scrapeInterval": "1s"},
            "watch": {"namespaces": ["tikv", "ratelimiter"]},
        },
    )
    cm = rendered.one("ConfigMap", "aiops-prometheus", NAMESPACE)
    config = yaml.safe_load(cm["data"]["prometheus.yml"])
    (job,) = config["scrape_configs"]
    assert job["kubernetes_sd_configs"][0]["namespaces"]["names"] == ["tikv", "ratelimiter"]
    targets = tmp_path / "pods.json"
    targets.write_text(json.dumps(PODS))
    del job["kubernetes_sd_configs"]
    job["file_sd_configs"] = [{"files": [str(targets)]}]
    job["scrape_timeout"] = "500ms"

    prom = start_prometheus(tmp_path / "prom", [job], scrape_interval="1s")
    try:
        deadline = time.monotonic() + 30
        while True:
            r = httpx.get(f"{prom.url}/api/v1/targets", timeout=5).json()["data"]
            active = sorted((t["labels"] for t in r["activeTargets"]), key=lambda t: t["pod"])
            if len(active) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        # Three: TiKV's two container ports make one target; Redis is not annotated.
        assert active == [
            {
                "instance": "127.0.0.4:8080",
                "job": "ratelimiter",
                "namespace": "ratelimiter",
                "pod": "rl-ratelimiter-0",
            },
            {"instance": "127.0.0.3:2379", "job": "pd", "namespace": "tikv", "pod": "tikv-pd-0"},
            {
                "instance": "127.0.0.2:20180",
                "job": "tikv",
                "namespace": "tikv",
                "pod": "tikv-tikv-0",
            },
        ], active
        assert all(t["scrapeUrl"].endswith("/metrics") for t in r["activeTargets"])

        # The TiKV plugin's own query, as the tikv chart's Subject configures it (storeLabel
        # pod), finds the store on its status port.
        cfg = TikvConfig.model_validate({"pdUrls": ["http://127.0.0.3:2379"], "storeLabel": "pod"})
        up: list[dict[str, Any]] = []
        while not up and time.monotonic() < deadline:
            up = query(prom.url, build(cfg).scrape_up)
            time.sleep(0.5)
        assert [(s["metric"], s["value"][1]) for s in up] == [({"pod": "tikv-tikv-0"}, "0")]
        assert query(prom.url, 'up{job="ratelimiter"}')
    finally:
        prom.stop()
