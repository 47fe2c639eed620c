"""`wire`: a model's fields in wire form by their Python names, so a misspelt status field is
an error where it is written, not a key the API server prunes."""

import pytest

from aiops.api import AgentUsage, ExecutedAction, IncidentStatus
from aiops.api.common import NULL, wire
from aiops.vocabulary import Outcome


def test_names_become_the_models_camel_case_and_none_is_left_out() -> None:
    assert wire(ExecutedAction, idempotency_key="k", result=Outcome.RUNNING, message=None) == {
        "idempotencyKey": "k",
        "result": "Running",
    }
    assert wire(AgentUsage, cost_usd=0.5, model="m") == {"costUSD": 0.5, "model": "m"}
    assert wire(IncidentStatus, escalation_reason="why", resolved_at=None) == {
        "escalationReason": "why"
    }
    assert wire(IncidentStatus, resolved_at=NULL) == {"resolvedAt": None}  # a merge patch clears


def test_a_name_the_model_lacks_is_refused() -> None:
    with pytest.raises(KeyError, match="IncidentStatus has no field 'escalationReason'"):
        wire(IncidentStatus, escalationReason="camelCase is the wire's, not a field name")
    with pytest.raises(KeyError, match="ExecutedAction has no field 'finished'"):
        wire(ExecutedAction, finished=True)
