"""The operator, run in-process by kopf's testing toolkit against the real API server, in a
namespace of the test's own."""

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kopf.testing import KopfRunner

from tests.fixtures import polling
from tests.fixtures.aiops_api import ApiNamespace, api_namespace
from tests.fixtures.cluster import ClusterHandle


@pytest.fixture
def ns(aiops_api: ClusterHandle) -> Iterator[ApiNamespace]:
    yield from api_namespace(aiops_api, "subj")


@contextmanager
def running_operator(env: ApiNamespace, monkeypatch: pytest.MonkeyPatch) -> Iterator[KopfRunner]:
    """`aiops operator run -n NS`, in a thread; stopped (gracefully) on exit."""
    monkeypatch.setenv("KUBECONFIG", str(env.cluster.kubeconfig))
    args = ["run", "--standalone", "--namespace", env.namespace, "-m", "aiops.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        yield runner
    assert runner.exception is None, runner.output


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(env: ApiNamespace, *args: str) -> Any:
    proc = env.kubectl("get", *args, "-o", "json", check=True)
    return json.loads(proc.stdout)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60) -> Any:
    """Polls `probe` until it returns something truthy; returns that."""
    return polling.wait_for(what, probe, timeout, every=0.25)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions", []):
        if c["type"] == type_:
            return dict(c)
    return None
