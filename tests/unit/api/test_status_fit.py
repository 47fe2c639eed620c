"""Incident status is written through the models: whatever the loop writes (a key of 300
characters, a 100 KB message, a secret in a model's diagnosis) comes out within every bound
the CRD declares, redacted, and valid; what no clipping can fix is refused with the field."""

from typing import Any, cast

import pytest

from aiops.api import IncidentStatus
from aiops.api.common import ShortText
from aiops.loops.incident.status import StatusWriteError, StatusWriter, fit
from aiops.redact import Redactor

NOW = "2030-01-01T00:00:00+00:00"


def running(**extra: Any) -> dict[str, Any]:
    return {
        "id": "a1",
        "action": "reset_counter",
        "params": {"key": "k"},
        "idempotencyKey": "abc-a1",
        "startedAt": NOW,
        "result": "Running",
        **extra,
    }


def writer(redactor: Redactor | None = None) -> StatusWriter:
    obj = {"metadata": {"namespace": "ns", "name": "inc"}, "status": {}}
    return StatusWriter(api=cast(Any, None), obj=obj, audit=cast(Any, None), redactor=redactor)


def test_a_long_entity_and_a_huge_message_are_clipped_to_the_crds_bounds() -> None:
    entry = "counter_drift/" + "k" * 300  # 314 characters; brokenBefore items hold 256
    message = "x" * 100_000
    clean = writer().clean(
        {
            "executedActions": [running(brokenBefore=[entry, "node_down/n1"], message=message)],
            "escalationReason": message,
            "timeline": [{"time": NOW, "message": message}] * 60,
        }
    )
    [action] = clean["executedActions"]
    first, second = action["brokenBefore"]
    assert 200 < len(first) <= 256 and first.startswith("counter_drift/kkk")
    assert second == "node_down/n1"
    assert 4000 < len(action["message"]) <= 4096
    assert 4000 < len(clean["escalationReason"]) <= 4096
    assert len(clean["timeline"]) == 50
    IncidentStatus.model_validate(clean)  # what goes to the API server is valid


def test_only_the_fields_written_are_in_the_patch_in_wire_form() -> None:
    clean = writer().clean({"phase": "Verifying", "executedActions": [running()]})
    assert sorted(clean) == ["executedActions", "phase"]
    assert clean["executedActions"][0]["startedAt"] == "2030-01-01T00:00:00Z"
    assert "undone" not in clean["executedActions"][0]  # defaults are not written


def test_status_text_is_redacted_with_the_operators_redactor() -> None:
    redactor = Redactor()
    redactor.register("hunter2-is-the-operator-key")
    clean = writer(redactor).clean(
        {
            "diagnosis": {
                "summary": "the key hunter2-is-the-operator-key leaked; "
                "password=swordfish in the config"
            },
            "escalationReason": "Authorization: Bearer abcdefghijklmnop",
        }
    )
    text = str(clean)
    for secret in ("hunter2-is-the-operator-key", "swordfish", "abcdefghijklmnop"):
        assert secret not in text
    assert "[REDACTED]" in clean["diagnosis"]["summary"]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"phase": "Fixed"}, "phase"),
        ({"executedActions": [running(id="not an id")]}, "executedActions.0.id"),
        ({"proposedActions": [{"id": "a1", "action": "x", "risk": "low"}] * 2}, "duplicate id"),
    ],
)
def test_what_clipping_cannot_fix_is_refused_with_the_field(
    fields: dict[str, Any], says: str
) -> None:
    with pytest.raises(StatusWriteError, match="invalid") as err:
        writer().clean(fields)
    assert says in str(err.value)


def test_fit_on_a_single_type() -> None:
    from pydantic import TypeAdapter

    assert fit(TypeAdapter(ShortText), "short") == "short"
    assert 200 < len(fit(TypeAdapter(ShortText), "y" * 1000)) <= 256


class RefusingApi:
    """The API server's side of status writes, in memory: it refuses the writes `refuse`
    picks with a 422, as a real one refuses an object its schema does not admit."""

    def __init__(self, obj: dict[str, Any], refuse: Any) -> None:
        self.obj, self.refuse = obj, refuse
        self.events: list[tuple[str, str, str]] = []

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        import copy

        return copy.deepcopy(self.obj)

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        import json

        from kubernetes.client.exceptions import ApiException

        if self.refuse(status):
            err = ApiException(status=422, reason="Unprocessable Entity")
            err.body = json.dumps({"message": "status.detectedAt: Invalid value: refused"})
            raise err
        self.obj["status"].update(status)
        return self.obj

    async def post_event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


async def test_an_incident_whose_status_cannot_be_written_escalates_with_the_reason(
    tmp_path: Any,
) -> None:
    from aiops.loops.checkpoint import FileCheckpoint
    from aiops.loops.incident import IncidentDriver
    from aiops.loops.runtime import Runtime

    obj = {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"namespace": "ns", "name": "inc", "uid": "u-1"},
        "spec": {"subject": "s", "summary": "a person's report"},
        "status": {},
    }
    api = RefusingApi(obj, refuse=lambda status: "detectedAt" in status)
    records: list[tuple[str, dict[str, Any]]] = []

    async def audit(namespace: str, name: str, kind: str, data: dict[str, Any]) -> None:
        records.append((kind, data))

    async def nothing_stopped() -> bool:
        return False

    rt = Runtime(
        api=cast(Any, api),
        audit=audit,
        agent_for=cast(Any, None),
        tools_for=cast(Any, None),
        checkpoint_for=lambda ns, n: FileCheckpoint(tmp_path / f"{n}.json"),
        actions_stopped=nothing_stopped,
    )
    driver = IncidentDriver(rt, "ns", "inc")
    assert await driver.step() == 0  # not an exception for the daemon to retry forever
    status = obj["status"]
    assert isinstance(status, dict) and status["phase"] == "Escalated"
    assert status["escalationReason"].startswith(
        "the Incident's status could not be written: the API server refused the status write "
        "(detectedAt, phase, timeline): 422 status.detectedAt: Invalid value: refused"
    )
    [why] = [d["status_write_failed"] for k, d in records if "status_write_failed" in d]
    assert status["escalationReason"].endswith(why)
    assert api.events == [("Warning", "Escalated", "escalated: " + status["escalationReason"])]
    assert await driver.step() is None  # closed
