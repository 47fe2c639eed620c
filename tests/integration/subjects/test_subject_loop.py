"""The subject loop against the real API server: bad Subjects are reported precisely and do
not stop the others; a subject that cannot be observed turns Unknown and, past its grace
period, opens exactly one observation_failed Incident — across operator restarts too."""

from datetime import datetime
from typing import Any

import pytest
import yaml

from tests.fixtures.aiops_api import ApiNamespace
from tests.fixtures.subject_loop import (
    closed_port,
    condition,
    get_json,
    running_operator,
    wait_for,
)


def subject(name: str, type_: str, config: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "Subject",
        "metadata": {"name": name},
        "spec": {"type": type_, "config": config, "interval": "1s", **spec},
    }


def unreachable_tikv(name: str, grace: str) -> dict[str, Any]:
    return subject(
        name,
        "tikv",
        {"pdUrls": [f"http://127.0.0.1:{closed_port()}"]},
        observationGracePeriod=grace,
        autonomy="observe",
    )


def apply(env: ApiNamespace, *manifests: dict[str, Any]) -> None:
    proc = env.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
    assert proc.returncode == 0, proc.stderr


def incidents_of(env: ApiNamespace, subject_name: str) -> list[dict[str, Any]]:
    items = get_json(env, "incidents", f"--field-selector=spec.subject={subject_name}")["items"]
    return list(items)


def test_bad_subjects_are_reported_and_the_others_keep_running(
    ns: ApiNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(
        ns,
        subject("unknown", "nosuch", {}),
        subject("badconfig", "tikv", {"pdUrls": "pd:2379"}),
        unreachable_tikv("unreachable", grace="2s"),
        subject("paused", "tikv", {"pdUrls": [f"http://127.0.0.1:{closed_port()}"]}, paused=True),
    )
    with running_operator(ns, monkeypatch):
        ready = wait_for(
            "the unknown type to be reported",
            lambda: condition(get_json(ns, "subject", "unknown"), "Ready"),
        )
        assert ready["status"] == "False" and ready["reason"] == "UnknownType"
        assert "unknown subject type 'nosuch'" in ready["message"]
        assert "tikv" in ready["message"]  # the known types are named

        ready = wait_for(
            "the paused subject to say so",
            lambda: condition(get_json(ns, "subject", "paused"), "Ready"),
        )
        assert (ready["status"], ready["reason"]) == ("False", "Paused")
        assert get_json(ns, "subject", "paused")["status"]["health"] == "Paused"

        ready = wait_for(
            "the bad config to be reported",
            lambda: condition(get_json(ns, "subject", "badconfig"), "Ready"),
        )
        assert ready["reason"] == "InvalidConfig"
        assert "pdUrls" in ready["message"] or "pd_urls" in ready["message"]

        failing = wait_for(
            "the unreachable subject to be Unknown",
            lambda: (
                (obj := get_json(ns, "subject", "unreachable"))["status"].get("health") == "Unknown"
                and obj
            ),
        )
        obs = condition(failing, "ObservationFailing")
        assert obs is not None and obs["status"] == "True"
        assert "127.0.0.1" in obs["message"]  # which endpoint, said plainly
        assert failing["status"]["observationFailingSince"]

        opened = wait_for(
            "the observation_failed incident", lambda: incidents_of(ns, "unreachable")
        )
        assert len(opened) == 1
        inc = opened[0]
        assert inc["spec"]["invariant"] == "observation_failed"
        assert inc["spec"]["severity"] == "critical"
        assert inc["spec"]["source"] == "subject-loop"
        assert inc["status"]["timeline"][0]["phase"] == "Open"
        assert inc["status"]["detectedAt"] and inc["status"]["faultAt"]
        wait_for(
            "openIncidents on the subject",
            lambda: get_json(ns, "subject", "unreachable")["status"].get("openIncidents") == 1,
        )
        # More cycles refresh the same incident; they never open a second one.
        wait_for(
            "the incident to be seen again",
            lambda: (incidents_of(ns, "unreachable")[0]["status"].get("count") or 0) >= 3,
        )
        assert len(incidents_of(ns, "unreachable")) == 1
        # The bad Subjects opened nothing: they are misconfigured, not observed broken.
        assert incidents_of(ns, "unknown") == [] and incidents_of(ns, "badconfig") == []

    events = get_json(ns, "events", "--field-selector=involvedObject.name=unreachable")["items"]
    reasons = {e["reason"] for e in events}
    assert "HealthUnknown" in reasons and "IncidentOpened" in reasons


def test_restart_in_the_middle_of_a_grace_period_loses_and_duplicates_nothing(
    ns: ApiNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(ns, unreachable_tikv("flaky", grace="8s"))
    with running_operator(ns, monkeypatch):
        since = wait_for(
            "observation to start failing",
            lambda: (
                get_json(ns, "subject", "flaky").get("status", {}).get("observationFailingSince")
            ),
        )
    # The operator is gone for a while, in the middle of the grace period.
    assert incidents_of(ns, "flaky") == []
    with running_operator(ns, monkeypatch):
        opened = wait_for("the incident", lambda: incidents_of(ns, "flaky"), timeout=30)
        status = get_json(ns, "subject", "flaky")["status"]
        # The grace period kept counting from the first failure, not from the restart.
        assert status["observationFailingSince"] == since
        fault_at = datetime.fromisoformat(opened[0]["status"]["faultAt"].replace("Z", "+00:00"))
        assert fault_at == datetime.fromisoformat(since.replace("Z", "+00:00"))
        detected = datetime.fromisoformat(opened[0]["status"]["detectedAt"].replace("Z", "+00:00"))
        assert (detected - fault_at).total_seconds() >= 8
    # A restart after the incident opened finds it again instead of opening another.
    with running_operator(ns, monkeypatch):
        name = opened[0]["metadata"]["name"]
        count = opened[0]["status"].get("count") or 1
        wait_for(
            "the incident to be refreshed",
            lambda: (get_json(ns, "incident", name)["status"].get("count") or 0) > count + 2,
        )
    assert [i["metadata"]["name"] for i in incidents_of(ns, "flaky")] == [name]
