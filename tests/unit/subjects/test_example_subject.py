"""The example Subject is one a user can apply as it is: the plugin accepts its config and its
invariant overrides name invariants the plugin has, and it points at the demo stack."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from aiops.api import Subject
from aiops.subjects.binding import bind
from ratelimiter.localstack import LocalStack

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "subject.yaml"


def test_the_example_subject_binds_to_its_plugin_with_every_override_known() -> None:
    subject = Subject.from_k8s(yaml.safe_load(EXAMPLE.read_text()))
    bound = bind(subject, api_client=None)
    try:
        overridden = {o.name for o in subject.spec.invariants}
        assert overridden <= set(bound.invariants)
        assert bound.invariants["node_down"].severity == "critical"
        assert bound.invariants["high_latency"].threshold == 0.25
    finally:
        asyncio.run(bound.close())


def test_the_example_subject_points_at_the_demo_stack(tmp_path: Path) -> None:
    from hack.demo import STACK_BASE_PORT  # the demo script, imported only here

    spec = yaml.safe_load(EXAMPLE.read_text())["spec"]
    urls = LocalStack(tmp_path, STACK_BASE_PORT).urls
    assert spec["config"]["adminUrls"] == list(urls.nodes.values())
    assert spec["config"]["redisUrl"] == urls.redis
    assert spec["prometheus"]["url"] == urls.prometheus
    assert spec["workload"]["supervisor"]["url"] == f"{urls.supervisor}/RPC2"


def test_the_example_incident_and_chaos_name_what_the_plugin_has() -> None:
    from ratelimiter_subject.plugin import RateLimiterPlugin

    examples = EXAMPLE.parent
    incident = yaml.safe_load((examples / "incident.yaml").read_text())["spec"]
    chaos = yaml.safe_load((examples / "chaos.yaml").read_text())["spec"]
    assert RateLimiterPlugin.invariant(incident["invariant"]).name == "node_down"
    assert RateLimiterPlugin.fault(chaos["fault"]).name == "kill_node"
    members = LocalStack(Path("unused"), 24100).spec.node_names()
    assert incident["entity"] in members and chaos["target"]["member"] in members
