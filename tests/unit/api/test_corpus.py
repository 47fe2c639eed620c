"""The malformed corpus is well formed, covers what the issue asks, and the model refuses
what the API server's schema and CEL refuse (the server side is tests/integration/api)."""

import pytest
from pydantic import ValidationError

from tests.integration.api import corpus

CASES = corpus.cases()


def test_corpus_is_large_and_covers_every_layer() -> None:
    assert len(CASES) >= 25
    assert {c.layer for c in CASES} == set(corpus.LAYERS)
    assert {c.kind.KIND for c in CASES} == {"Subject", "Incident", "Approval", "Chaos"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_is_well_formed(case: corpus.Case) -> None:
    assert case.headers.get("rejects")
    assert case.expect
    assert case.layer in corpus.LAYERS
    assert case.operation in corpus.OPERATIONS
    docs = case.documents("ns")
    assert len(docs) == (1 if case.operation == "create" else 2)
    assert all(d["metadata"]["name"] == case.name for d in docs)
    if case.operation == "status":
        assert "status" in docs[-1]


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.layer in ("schema", "cel")], ids=lambda c: c.name
)
def test_model_refuses_what_the_schema_refuses(case: corpus.Case) -> None:
    base, *_ = case.documents("ns")
    if case.operation != "create":
        case.kind.from_k8s(base)  # the base is valid; only the change is not
    with pytest.raises(ValidationError):
        case.kind.from_k8s(case.documents("ns")[-1])
