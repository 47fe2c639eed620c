"""Every manifest in bad/ is rejected by the real API server, with the message a person needs,
and nothing of it is stored."""

import pytest
import yaml

from tests.fixtures.api_ns import ApiNamespace
from tests.integration.api import corpus

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("case", corpus.cases(), ids=lambda c: c.name)
def test_rejected_with_message(api_ns: ApiNamespace, case: corpus.Case) -> None:
    docs = case.documents(api_ns.namespace)
    bad = docs[-1]
    user = case.as_user(api_ns.namespace)
    plural, name = case.kind.PLURAL, bad["metadata"]["name"]
    before = None
    if case.operation in ("update", "status"):
        created = api_ns.apply(docs[0], as_user=case.base_as_user(api_ns.namespace))
        assert created.returncode == 0, created.stderr
        before = api_ns.get(plural, name)

    if case.operation == "status":
        # Server-side apply to /status: one PATCH, as a controller would write it.
        proc = api_ns.apply(bad, "--server-side", "--subresource=status", as_user=user)
    elif case.operation == "update":
        # replace, not apply: a full update, so a removed field is really removed.
        proc = api_ns.kubectl("replace", "-f", "-", as_user=user, input=yaml.safe_dump(bad))
    else:
        # create, not apply: one POST, so what is refused is the create itself (a client-side
        # apply GETs first, and a user who may not read the kind is refused there instead).
        proc = api_ns.kubectl("create", "-f", "-", as_user=user, input=yaml.safe_dump(bad))

    assert proc.returncode != 0, f"{case.name} was accepted: {proc.stdout}"
    assert case.expect in proc.stderr
    after = api_ns.get(plural, name)
    if before is None:
        assert after is None, f"{case.name} was stored"
    else:
        assert after is not None
        assert (after["spec"], after.get("status")) == (before["spec"], before.get("status"))
