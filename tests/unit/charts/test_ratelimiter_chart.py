"""The rate limiter chart as the operator meets it from another namespace: its Subject names
what the chart runs, every pod goes where it is placed, and each node advertises an address
that resolves from any namespace."""

from __future__ import annotations

import re

from aiops.api import Subject
from ratelimiter_subject.config import RateLimiterConfig
from tests.unit.charts.helm import template

PLACED = {
    "nodeSelector": {"aiops.dev/real-node": "true"},
    "tolerations": [{"key": "aiops.dev/real-node", "operator": "Exists"}],
}


def test_the_subject_names_the_charts_services_and_pods() -> None:
    rendered = template(
        "ratelimiter", {"subject": {"enabled": True}}, release="rl", namespace="limits"
    )
    doc = rendered.one("Subject", "rl")
    subject = Subject.model_validate(doc)  # what the API server checks against the CRD
    RateLimiterConfig.model_validate(subject.spec.config)  # the plugin's own check
    services = {
        (s["metadata"]["name"], p["port"])
        for s in rendered.all("Service")
        for p in s["spec"]["ports"]
    }
    raw = doc["spec"]["config"]
    for url in [*raw["adminUrls"], raw["redisUrl"], raw["toxiproxyUrl"]]:
        m = re.match(r"^\w+://([^.]+)\.limits\.svc:(\d+)", url)
        assert m and (m.group(1), int(m.group(2))) in services, url
    (nodes,) = rendered.all("StatefulSet")
    labels = nodes["spec"]["template"]["metadata"]["labels"]
    assert doc["spec"]["workload"]["selector"]["matchLabels"].items() <= labels.items()
    assert "prometheus" not in doc["spec"]  # none given, none claimed
    assert not template("ratelimiter").all("Subject")  # off by default


def test_every_pod_is_placed_where_asked() -> None:
    rendered = template("ratelimiter", PLACED)
    workloads = [*rendered.all("StatefulSet"), *rendered.all("Deployment")]
    assert len(workloads) == 3  # nodes, Redis, toxiproxy
    for w in workloads:
        pod = w["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == PLACED["nodeSelector"], w["metadata"]["name"]
        assert pod["tolerations"] == PLACED["tolerations"], w["metadata"]["name"]


def test_a_node_advertises_an_address_other_namespaces_resolve() -> None:
    rendered = template("ratelimiter", release="rl", namespace="limits")
    (nodes,) = rendered.all("StatefulSet")
    (container,) = nodes["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    peer = nodes["spec"]["serviceName"]
    assert env["RL_ADVERTISE_URL"] == f"http://$(POD_NAME).{peer}.limits.svc:8080"
    (redis,) = [d for d in rendered.all("Deployment") if d["metadata"]["name"] == "rl-redis"]
    (rc,) = redis["spec"]["template"]["spec"]["containers"]
    assert rc["livenessProbe"]["tcpSocket"]["port"] == "redis"
