"""A bad setting stops the operator at start, against the real API server: run the way the
tests and embedders run it (`kopf run -m aiops.handlers`), kopf ends on the startup handler's
PermanentError naming the variable, and no Subject is ever touched."""

import time

import pytest
import yaml
from kopf.testing import KopfRunner

from tests.fixtures import polling
from tests.fixtures.aiops_api import ApiNamespace
from tests.fixtures.subject_loop import closed_port, get_json

SUBJECT = {
    "apiVersion": "aiops.dev/v1alpha1",
    "kind": "Subject",
    "metadata": {"name": "watched"},
    "spec": {
        "type": "tikv",
        "config": {"pdUrls": [f"http://127.0.0.1:{closed_port()}"]},
        "interval": "1s",
        "autonomy": "observe",
    },
}


def test_a_bad_setting_stops_kopf_at_start_and_nothing_is_written(
    ns: ApiNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied = ns.kubectl("apply", "-f", "-", input=yaml.safe_dump(SUBJECT))
    assert applied.returncode == 0, applied.stderr
    monkeypatch.setenv("KUBECONFIG", str(ns.cluster.kubeconfig))
    monkeypatch.setenv("AIOPS_VERIFY_TIMEOUT", "0")
    args = ["run", "--standalone", "--namespace", ns.namespace, "-m", "aiops.handlers"]
    started = time.monotonic()
    with KopfRunner(args, timeout=60, reraise=False) as runner:
        # The operator must stop on its own: wait for that before leaving the block, which
        # would otherwise stop it (and hide a startup that never ends).
        polling.wait_for("the operator to stop on its own", runner.future.done, timeout=30)
    took = time.monotonic() - started
    assert runner.exception is not None, runner.output
    cause = runner.exception.__cause__
    assert "AIOPS_VERIFY_TIMEOUT='0'" in str(cause), repr(cause)
    assert "greater than or equal to 1 second" in str(cause)
    assert took < 30  # at start, not after a retry backoff
    assert "status" not in get_json(ns, "subject", "watched")  # no loop ever ran
