"""The operator's metrics, unit by unit: what each recording function counts, the gauges read
from the daemons' live objects, and the endpoint (served, or refused in one line when its
port is taken). The whole run is tests/integration/metrics."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.registry import REGISTRY

from aiops import metrics
from aiops.metrics.live import LiveObjects
from aiops.vocabulary import Check, Risk, Verdict


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def subject() -> str:
    """A Subject of the test's own: series of other tests never mix in."""
    return metrics.subject_id("ns", f"s-{uuid.uuid4().hex[:8]}")


def test_a_watched_subject_has_its_series_at_zero(subject: str) -> None:
    metrics.subject_bound(subject, ["node_down"])
    for outcome in ("Resolved", "Escalated"):
        assert (
            REGISTRY.get_sample_value(
                "aiops_incidents_closed_total",
                {"subject": subject, "invariant": "node_down", "outcome": outcome},
            )
            == 0
        )
    labels = {"subject": subject, "invariant": "node_down", "origin": "chaos"}
    assert REGISTRY.get_sample_value("aiops_incident_time_to_detect_seconds_count", labels) == 0
    assert REGISTRY.get_sample_value("aiops_observation_failures_total", {"subject": subject}) == 0


def test_observations_are_timed_and_failures_counted(subject: str) -> None:
    with metrics.observation(subject):
        pass
    with pytest.raises(TimeoutError), metrics.observation(subject):
        raise TimeoutError
    assert value("aiops_observation_duration_seconds_count", subject=subject) == 2
    assert value("aiops_observation_failures_total", subject=subject) == 1


def test_open_and_closed_incidents_with_ttd_and_ttr(subject: str) -> None:
    metrics.incident_opened(subject, "high_latency", "chaos", 4.2)
    metrics.incident_closed(subject, "high_latency", "Resolved", "chaos", 30.0)
    metrics.incident_closed(subject, "high_latency", "Escalated", "chaos", 99.0)
    labels = {"subject": subject, "invariant": "high_latency"}
    assert value("aiops_incidents_opened_total", **labels) == 1
    assert value("aiops_incidents_closed_total", **labels, outcome="Resolved") == 1
    assert value("aiops_incidents_closed_total", **labels, outcome="Escalated") == 1
    ttd = {**labels, "origin": "chaos"}
    assert value("aiops_incident_time_to_detect_seconds_sum", **ttd) == pytest.approx(4.2)
    assert value("aiops_incident_time_to_detect_seconds_bucket", **ttd, le="5.0") == 1
    assert value("aiops_incident_time_to_detect_seconds_bucket", **ttd, le="2.0") == 0
    # Only the Resolved one has a time to resolve.
    assert value("aiops_incident_time_to_resolve_seconds_count", **ttd) == 1
    assert value("aiops_incident_time_to_resolve_seconds_sum", **ttd) == 30.0


def test_tokens_turns_and_cost_come_from_the_usage_fields() -> None:
    model = f"claude-test-{uuid.uuid4().hex[:6]}"
    usage = {"input_tokens": 1200, "output_tokens": 34, "cache_read_tokens": 5}
    metrics.agent_turn("anthropic", model, usage, 0.25)
    metrics.agent_turn("anthropic", model, {"input_tokens": 1}, 0.5)
    on = {"backend": "anthropic", "model": model}
    assert value("aiops_agent_turns_total", **on) == 2
    assert value("aiops_agent_tokens_total", **on, kind="input") == 1201
    assert value("aiops_agent_tokens_total", **on, kind="output") == 34
    assert value("aiops_agent_tokens_total", **on, kind="cache_read") == 5
    assert value("aiops_agent_tokens_total", **on, kind="cache_write") == 0
    assert value("aiops_agent_cost_usd_total", **on) == 0.75


def test_refusals_are_counted_by_check_and_nothing_else_is() -> None:
    before = value("aiops_proposals_refused_total", check="blast-radius")
    metrics.proposal_judged(Verdict.REFUSED, Check.BLAST_RADIUS)
    metrics.proposal_judged(Verdict.RUN, Check.AUTONOMY)
    metrics.proposal_judged(Verdict.AWAIT_APPROVAL, Check.AUTONOMY)
    assert value("aiops_proposals_refused_total", check="blast-radius") == before + 1


def test_actions_and_tool_calls_by_name_risk_and_result() -> None:
    action = f"act-{uuid.uuid4().hex[:6]}"
    metrics.action_ran(action, Risk.HIGH, True, 0.3)
    metrics.action_ran(action, Risk.HIGH, False, 0.1)
    assert value("aiops_actions_total", action=action, risk="high", result="Succeeded") == 1
    assert value("aiops_actions_total", action=action, risk="high", result="Failed") == 1
    assert value("aiops_action_duration_seconds_count", action=action) == 2
    tool = f"tool-{uuid.uuid4().hex[:6]}"
    metrics.tool_called(tool, ok=False)
    assert value("aiops_agent_tool_calls_total", tool=tool, result="error") == 1
    # Both results exist from the first call: "no errors" reads as 0, not as no data.
    assert (
        REGISTRY.get_sample_value("aiops_agent_tool_calls_total", {"tool": tool, "result": "ok"})
        == 0
    )


def audit_counts() -> tuple[float, float]:
    return (
        value("aiops_audit_write_duration_seconds_count"),
        value("aiops_audit_write_failures_total"),
    )


def test_audit_writes_are_timed_and_failures_counted() -> None:
    before = audit_counts()
    with metrics.audit_write():
        pass
    with pytest.raises(OSError), metrics.audit_write():
        raise OSError("disk full")
    assert audit_counts() == (before[0] + 2, before[1] + 1)


# -- the gauges of what is open now ----------------------------------------------------------


def incident(subject: str, phase: str | None, *steps: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = {"proposedActions": list(steps)}
    if phase:
        status["phase"] = phase
    return {"spec": {"subject": subject}, "status": status}


@pytest.fixture
def live() -> Iterator[tuple[LiveObjects, CollectorRegistry]]:
    objects = LiveObjects()
    registry = CollectorRegistry()
    registry.register(objects)
    yield objects, registry


def test_gauges_count_the_open_objects_and_keep_zeros(
    live: tuple[LiveObjects, CollectorRegistry],
) -> None:
    objects, registry = live
    waiting = {"id": "a1", "decision": "await-approval"}
    approved = {"id": "a2", "decision": "await-approval", "approvalUid": "u-1"}
    objects.add_incident("team", "i1", incident("rl", None))
    objects.add_incident("team", "i2", incident("rl", "AwaitingApproval", waiting, approved))
    objects.add_incident("team", "i3", incident("rl", "AwaitingApproval", waiting))
    objects.add_incident("other", "i4", incident("rl", "Remediating"))
    objects.add_chaos(
        "team",
        "c1",
        {
            "spec": {"subject": "rl", "fault": "kill_node"},
            "status": {"targets": [{"state": "Injected"}, {"state": "Reverted"}]},
        },
    )

    def get(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert get("aiops_incidents_open", subject="team/rl", phase="Open") == 1
    assert get("aiops_incidents_open", subject="team/rl", phase="AwaitingApproval") == 2
    assert get("aiops_incidents_open", subject="team/rl", phase="Verifying") == 0
    assert get("aiops_incidents_open", subject="other/rl", phase="Remediating") == 1
    assert get("aiops_approvals_pending", subject="team/rl") == 2  # a2 has its Approval
    assert get("aiops_chaos_faults_active", subject="team/rl", fault="kill_node") == 1

    for name in ("i1", "i2", "i3"):
        objects.drop_incident("team", name)
    objects.drop_chaos("team", "c1")
    # Gone from the daemons, still a series: 0, not "no data".
    assert get("aiops_incidents_open", subject="team/rl", phase="AwaitingApproval") == 0
    assert get("aiops_approvals_pending", subject="team/rl") == 0
    assert get("aiops_chaos_faults_active", subject="team/rl", fault="kill_node") == 0


# -- the endpoint -----------------------------------------------------------------------------


def test_serve_answers_a_scrape_once_per_address_and_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert metrics.serve("127.0.0.1", port) is True
    assert metrics.serve("127.0.0.1", port) is False  # already serving here
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert "# TYPE aiops_incidents_opened_total counter" in text
    assert "# TYPE aiops_incidents_open gauge" in text


def operator_run(*args: str) -> subprocess.CompletedProcess[str]:
    """`aiops operator run -n default ARGS`, as a process: it must stop before kopf starts."""
    return subprocess.run(
        [sys.executable, "-m", "aiops.cli.main", "operator", "run", "-n", "default", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_port_in_use_stops_the_operator_with_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = operator_run("--metrics-port", str(port))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"aiops: the metrics port 127.0.0.1:{port} is in use by another process: give a free "
        "one with --metrics-port (AIOPS_METRICS_PORT)"
    ]
    assert proc.stdout == ""


def test_a_bad_metrics_address_is_refused_at_start() -> None:
    proc = operator_run("--metrics-port", "9", "--metrics-address", "example.com")
    assert proc.returncode == 2
    assert "AIOPS_METRICS_ADDRESS='example.com': not an IP address" in proc.stderr
