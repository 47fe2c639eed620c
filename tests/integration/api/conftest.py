"""The API tests' namespace: the shared one (tests/fixtures/aiops_api.py), once the Approval
admission policy is being enforced."""

from collections.abc import Iterator

import pytest
import yaml

from aiops.api import Approval
from tests.fixtures.aiops_api import (
    CRDS,
    EXAMPLES,
    OPERATOR_SA,
    PEOPLE,
    REPO,
    ApiNamespace,
    api_namespace,
    wait_until,
)
from tests.fixtures.cluster import ClusterHandle

__all__ = ["CRDS", "EXAMPLES", "OPERATOR_SA", "PEOPLE", "REPO", "ApiNamespace"]


@pytest.fixture(scope="package")
def api_ns(aiops_api: ClusterHandle) -> Iterator[ApiNamespace]:
    for env in api_namespace(aiops_api, "aiops-api"):
        _wait_for_policy(env)
        yield env


def _wait_for_policy(env: ApiNamespace) -> None:
    """A new admission policy takes a moment to be enforced; a dry run tells when it is."""
    probe = yaml.safe_load((EXAMPLES / "approval.yaml").read_text())
    probe["spec"]["approvedBy"] = "bob"

    def enforced() -> bool:
        proc = env.apply(probe, "--dry-run=server", as_user="alice")
        return proc.returncode != 0 and "cannot approve as bob" in proc.stderr

    wait_until(f"the {Approval.KIND} admission policy", enforced)
