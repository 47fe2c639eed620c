"""An Approval approves one step exactly: this Incident (by uid), created after the step was
proposed, and the digest of the step's action and params as they are now. Anything else is
said in words a person can act on."""

from datetime import UTC, datetime, timedelta
from typing import Any

from aiops.api import Approval
from aiops.api.approval import step_digest
from aiops.loops.incident.approvals import mismatch

UID = "3f2b8a4e-0c1d-4e5f-9a6b-7c8d9e0f1a2b"
PROPOSED = datetime(2030, 1, 1, 12, 0, 0, 500_000, tzinfo=UTC)
PARAMS = {"key": "drift-1"}


def approval(**spec: Any) -> Approval:
    created = spec.pop("created", PROPOSED + timedelta(seconds=5))
    body = {
        "incident": "inc",
        "incidentUid": UID,
        "actions": ["a1"],
        "decision": "approve",
        "approvedBy": "bob",
        "digests": {"a1": step_digest(UID, "a1", "reset_counter", PARAMS)},
        **spec,
    }
    return Approval.from_k8s(
        {"metadata": {"name": "ap", "creationTimestamp": created.isoformat()}, "spec": body}
    )


def why(
    ap: Approval,
    params: dict[str, Any] = PARAMS,
    action: str = "reset_counter",
    uid: str = UID,
    proposed: datetime | None = PROPOSED,
) -> str | None:
    return mismatch(ap, uid, "a1", action, params, proposed)


def test_the_approval_of_this_very_step_matches() -> None:
    assert why(approval()) is None
    # The same second as the proposal counts as after it: creationTimestamp has seconds.
    assert why(approval(created=PROPOSED.replace(microsecond=0))) is None


def test_changed_params_or_action_do_not_match() -> None:
    assert "does not match the step" in str(why(approval(), params={"key": "other"}))
    assert "does not match the step" in str(why(approval(), action="update_limit"))


def test_another_incident_an_earlier_approval_or_no_digest_do_not_match() -> None:
    other = str(why(approval(), uid="0" * 8))
    assert f"incident uid {UID}" in other and "not this incident's 00000000" in other
    early = str(why(approval(created=PROPOSED - timedelta(seconds=2))))
    assert "before a1 was proposed" in early
    assert "no proposal time on record" in str(why(approval(), proposed=None))
    digests = {"a1": step_digest(UID, "a2", "reset_counter", PARAMS)}  # another step's
    assert "does not match" in str(why(approval(digests=digests)))


def test_a_rejection_needs_no_digest_but_the_right_incident() -> None:
    reject = approval(decision="reject", digests={})
    assert why(reject, params={"key": "changed"}) is None
    assert "incident uid" in str(why(reject, uid="other"))


def test_the_digest_is_over_canonical_json_and_whole_floats_are_integers() -> None:
    a = step_digest(UID, "a1", "update_limit", {"limit": 5000, "window_ms": 60000})
    assert a == step_digest(UID, "a1", "update_limit", {"window_ms": 60000.0, "limit": 5000})
    assert a != step_digest(UID, "a1", "update_limit", {"limit": 5001, "window_ms": 60000})
    assert len(a) == 64 and int(a, 16) >= 0
