"""The operator's /metrics through one real incident, and the dashboard on a real Prometheus.

`aiops operator run --metrics-port` as a real process, on the rate limiter (real Redis, nodes,
supervisord) and the real API server, Claude reached by the real SDK at the scripted server.
A Chaos drifts a counter; the subject loop opens the Incident; the model proposes a step the
gate refuses (nothing to reset on that key) and the fix, which waits for an Approval; bob
approves; the fix runs and is verified: Resolved. /metrics is read at each stage and every
metric must have moved as it should: TTD observed once (from the Chaos' injection), tokens as
the scripted usage fields say, the refused proposal by its check, the action by name, risk
and result, the gauges up while open and back to 0.

Meanwhile a real Prometheus (Debian's) scrapes the operator every second; afterwards every
expression of the chart's Grafana dashboard must parse and return data from it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiops.agent.pricing import cost_usd
from ratelimiter.localstack import LocalStack
from tests.fixtures import dashboard, polling
from tests.fixtures.chaos_env import chaos_manifest, clean_up
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.incident_loop import LoopEnv, OperatorProcess, aiops, operator_free_env
from tests.fixtures.prometheus import PrometheusProcess, free_port, start_prometheus
from tests.fixtures.ratelimiter_subject import subject_manifest
from tests.fixtures.scripted_anthropic import ScriptedAnthropic, reply, tool_use

pytestmark = pytest.mark.cluster

FAKE_KEY = "sk-ant-api03-FAKE-metrics-test-key-000000000000"
SUBJECT = "rl"
# The scripted model's usage fields, one (input, output) pair per reply.
USAGE = [(1111, 11), (1222, 22), (1333, 33), (1444, 44)]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def run(
    aiops_api: ClusterHandle,
    rl_stack: LocalStack,
    tmp_path_factory: pytest.TempPathFactory,
    _scripted_anthropic_server: ScriptedAnthropic,
) -> Iterator[tuple[LoopEnv, str, PrometheusProcess, ScriptedAnthropic]]:
    """The operator (a real process, serving /metrics) and a Prometheus scraping it."""
    work = tmp_path_factory.mktemp("metrics")
    port = free_port()
    for env in operator_free_env(aiops_api, rl_stack, work / "audit", "metrics"):
        operator = OperatorProcess(
            env,
            work,
            ANTHROPIC_API_KEY=FAKE_KEY,
            ANTHROPIC_BASE_URL=_scripted_anthropic_server.base_url,
            AIOPS_OPERATOR_NAMESPACE=env.ns.namespace,
            AIOPS_VERIFY_TIMEOUT="20",
            AIOPS_METRICS_PORT=str(port),
        )
        operator.start()  # it starts while Prometheus does
        prometheus: PrometheusProcess | None = None
        try:
            env.apply(subject_manifest(SUBJECT, env.stack, autonomy="propose", cooldown="0s"))
            prometheus = start_prometheus(
                work / "prometheus",
                [
                    {
                        "job_name": "aiops-operator",
                        "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                    }
                ],
                scrape_interval="1s",
            )
            yield env, f"http://127.0.0.1:{port}/metrics", prometheus, _scripted_anthropic_server
            clean_up(env.ns)
        finally:
            operator.stop()
            if prometheus is not None:
                prometheus.stop()
            _scripted_anthropic_server.script([])


def scrape(url: str) -> Samples:
    text = httpx.get(url, timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name` over the series carrying `labels`; fails when there is none, so a
    metric that is missing is never read as 0."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert found, f"no series {name}{labels} in /metrics"
    return sum(found)


def wait_metrics(url: str, what: str, probe: Any, timeout: float = 60) -> Samples:
    def ready() -> Samples | None:
        try:
            samples = scrape(url)
        except httpx.HTTPError:
            return None
        try:
            return samples if probe(samples) else None
        except AssertionError:
            return None

    found: Samples = polling.wait_for(what, ready, timeout, every=0.3)
    return found


def propose(key: str, why: str) -> dict[str, Any]:
    return tool_use(
        "propose_action", {"action": "reset_counter", "params": {"key": key}, "rationale": why}
    )


def test_every_metric_moves_through_a_chaos_incident_and_the_dashboard_reads_them(
    run: tuple[LoopEnv, str, PrometheusProcess, ScriptedAnthropic],
) -> None:
    env, url, prometheus, server = run
    ns = env.ns.namespace
    subject = f"{ns}/{SUBJECT}"
    key = f"metrics-{uuid.uuid4().hex[:6]}"
    on = {"subject": subject, "invariant": "counter_drift"}

    # The operator may take a while to start on a busy machine: its first observation says
    # it is up (the endpoint itself is bound before kopf starts).
    before = wait_metrics(
        url,
        "the Subject observed",
        lambda s: total(s, "aiops_observation_duration_seconds_count", subject=subject) > 0,
        timeout=120,
    )
    polling.wait_for(
        "Subject rl Healthy",
        lambda: (env.get("subjects", SUBJECT).get("status") or {}).get("health") == "Healthy",
        60,
    )
    # Watched, nothing happened yet: the series are there, at 0.
    assert total(before, "aiops_incidents_opened_total", **on) == 0
    assert total(before, "aiops_incident_time_to_detect_seconds_count", **on) == 0
    assert total(before, "aiops_observation_failures_total", subject=subject) >= 0  # a series
    assert total(before, "aiops_incidents_open", subject=subject) == 0

    server.script(
        [
            reply(tool_use("observe_subject"), input_tokens=USAGE[0][0], output_tokens=USAGE[0][1]),
            reply(
                propose(f"no-such-{key}", "a typo the gate catches"),
                input_tokens=USAGE[1][0],
                output_tokens=USAGE[1][1],
            ),
            reply(
                propose(key, "entries dated ahead of Redis"),
                input_tokens=USAGE[2][0],
                output_tokens=USAGE[2][1],
            ),
            reply(
                tool_use("resolve", {"summary": f"Key {key} holds entries dated ahead."}),
                input_tokens=USAGE[3][0],
                output_tokens=USAGE[3][1],
            ),
        ]
    )
    env.apply(
        chaos_manifest(
            "drift", "counter_drift", {"member": key}, duration="2m", params={"entries": 12}
        )
    )
    name = polling.wait_for(
        "an Incident linked to the Chaos",
        lambda: (env.get("chaos", "drift").get("status") or {}).get("incidents"),
        60,
    )[0]
    inc = env.wait_phase(name, "AwaitingApproval", "Escalated", "Resolved", timeout=90)
    assert inc["status"]["phase"] == "AwaitingApproval", inc["status"]

    waiting = wait_metrics(
        url,
        "the open incident and its waiting step",
        lambda s: total(s, "aiops_approvals_pending", subject=subject) == 1,
    )
    assert total(waiting, "aiops_incidents_open", subject=subject, phase="AwaitingApproval") == 1
    assert total(waiting, "aiops_incidents_open", subject=subject) == 1
    assert total(waiting, "aiops_chaos_faults_active", subject=subject, fault="counter_drift") == 1
    assert total(waiting, "aiops_incidents_opened_total", **on) == 1
    # TTD: observed once, from the Chaos' injection, as the Incident's status says.
    st = inc["status"]
    ttd = (ts(st["detectedAt"]) - ts(st["faultAt"])).total_seconds()
    chaos_on = {**on, "origin": "chaos"}
    assert total(waiting, "aiops_incident_time_to_detect_seconds_count", **chaos_on) == 1
    assert total(waiting, "aiops_incident_time_to_detect_seconds_count", **on) == 1
    assert total(waiting, "aiops_incident_time_to_detect_seconds_sum", **chaos_on) == pytest.approx(
        ttd, abs=0.01
    )
    # The model: four turns, tokens exactly as its usage fields said, their cost.
    [model] = {dict(ls)["model"] for (n, ls) in waiting if n == "aiops_agent_turns_total"}
    agent = {"backend": "anthropic", "model": model}
    assert total(waiting, "aiops_agent_turns_total", **agent) == len(USAGE)
    assert total(waiting, "aiops_agent_tokens_total", **agent, kind="input") == sum(
        i for i, _ in USAGE
    )
    assert total(waiting, "aiops_agent_tokens_total", **agent, kind="output") == sum(
        o for _, o in USAGE
    )
    cost = sum(
        cost_usd(model, input_tokens=i, output_tokens=o, cache_read_tokens=0, cache_write_tokens=0)[
            0
        ]
        for i, o in USAGE
    )
    assert total(waiting, "aiops_agent_cost_usd_total", **agent) == pytest.approx(cost)
    assert total(waiting, "aiops_agent_investigations_total", **agent, outcome="plan") == 1
    # Its tool calls, the refused one an error; and the refusal counted by the gate's check.
    calls = {
        (dict(ls)["tool"], dict(ls)["result"]): v
        for (n, ls), v in waiting.items()
        if n == "aiops_agent_tool_calls_total" and v
    }
    assert calls == {
        ("observe_subject", "ok"): 1,
        ("propose_action", "error"): 1,
        ("propose_action", "ok"): 1,
        ("resolve", "ok"): 1,
    }
    assert total(waiting, "aiops_proposals_refused_total", check="precondition") == 1
    assert total(waiting, "aiops_proposals_refused_total") == 1
    assert not [n for (n, _) in waiting if n == "aiops_actions_total"]  # nothing ran yet

    approved = aiops(env, "approve", name, "-n", ns, "--as", "bob")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    inc = env.wait_phase(name, "Resolved", "Escalated", timeout=90)
    st = inc["status"]
    assert st["phase"] == "Resolved", st.get("escalationReason")

    after = wait_metrics(
        url,
        "the incident closed",
        lambda s: total(s, "aiops_incidents_closed_total", **on, outcome="Resolved") == 1,
    )
    assert total(after, "aiops_incidents_closed_total", **on, outcome="Escalated") == 0
    assert total(after, "aiops_incidents_open", subject=subject) == 0
    assert total(after, "aiops_approvals_pending", subject=subject) == 0
    assert total(after, "aiops_actions_total", action="reset_counter") == 1
    assert total(after, "aiops_actions_total", action="reset_counter", risk="low") == 1
    assert total(after, "aiops_actions_total", result="Succeeded") == 1
    assert total(after, "aiops_action_duration_seconds_count", action="reset_counter") == 1
    ttr = (ts(st["resolvedAt"]) - ts(st["faultAt"])).total_seconds()
    assert total(after, "aiops_incident_time_to_resolve_seconds_count", **chaos_on) == 1
    assert total(after, "aiops_incident_time_to_resolve_seconds_sum", **chaos_on) == (
        pytest.approx(ttr, abs=1.0)
    )
    assert total(after, "aiops_incident_time_to_detect_seconds_count", **on) == 1  # still once
    assert total(after, "aiops_audit_write_duration_seconds_count") > 10
    assert total(after, "aiops_audit_write_failures_total") == 0
    assert total(after, "aiops_observation_duration_seconds_count", subject=subject) > total(
        before, "aiops_observation_duration_seconds_count", subject=subject
    )

    env.ns.kubectl("delete", "chaos", "drift", "--timeout=60s")
    wait_metrics(
        url,
        "the fault reverted",
        lambda s: total(s, "aiops_chaos_faults_active", subject=subject) == 0,
    )

    # -- the dashboard, on the Prometheus that scraped all of it ---------------------------
    polling.wait_for(
        "Prometheus to have scraped the reverted fault",
        lambda: (
            query(prometheus, f'sum(aiops_chaos_faults_active{{subject="{subject}"}})') == [0.0]
        ),
        30,
    )
    for expr in dashboard.expressions():
        result = query(prometheus, dashboard.as_sent(expr))
        assert result, f"no data from Prometheus for the dashboard's {expr!r}"
    # Every metric the operator serves, as Prometheus scraped it, is on the dashboard.
    names = {
        r["metric"]["__name__"]
        for r in query_raw(prometheus, 'group by (__name__) ({__name__=~"aiops_.+"})')
    }
    assert {dashboard.family(n) for n in names} == dashboard.metrics()


# -- Prometheus --------------------------------------------------------------------------------


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def query_raw(prometheus: PrometheusProcess, expr: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10)
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def query(prometheus: PrometheusProcess, expr: str) -> list[float]:
    return [float(r["value"][1]) for r in query_raw(prometheus, expr)]
