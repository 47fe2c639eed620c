"""Bad input, as a user meets it in the Subject's status: a config the plugin rejects, an
unreachable admin API, a Prometheus that answers garbage, a Redis that cannot be read. Each
says exactly what is wrong (a condition with a reason and a message naming the URL and the
problem, never a secret), and the operator keeps serving the healthy Subject beside them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fixtures.ratelimiter_subject import (
    RateLimiterEnv,
    condition,
    subject_manifest,
    wait_for,
)
from tests.fixtures.subject_loop import closed_port

SECRET = "hunter2-do-not-show"

pytestmark = pytest.mark.cluster


class _Garbage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><body>definitely not Prometheus</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # the client may POST a query

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def garbage_prometheus() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def failing(env: RateLimiterEnv, name: str) -> dict[str, str]:
    return wait_for(
        f"{name} to report its observation failing",
        lambda: (
            (c := condition(env.subject(name), "ObservationFailing")).get("status") == "True" and c
        ),
        timeout=30,
    )


def last_observed(env: RateLimiterEnv) -> datetime:
    return datetime.fromisoformat(env.subject()["status"]["lastObservationTime"])


def test_bad_subjects_say_what_is_wrong_and_the_good_one_keeps_being_observed(
    rl_env: RateLimiterEnv, garbage_prometheus: str
) -> None:
    stack = rl_env.stack
    good = {"adminUrls": list(stack.urls.nodes.values()), "redisUrl": stack.urls.redis}
    dead_api, dead_redis = closed_port(), closed_port()
    garbage = subject_manifest("rl-garbage", stack, good)
    garbage["spec"]["prometheus"]["url"] = garbage_prometheus
    rl_env.apply(
        garbage,
        subject_manifest(
            "rl-badconfig",
            stack,
            {
                "adminUrls": ["not a url"],
                "latencyWindow": "5 minutes",
                "maxKeys": 0,
            },
        ),
        subject_manifest(
            "rl-unreachable",
            stack,
            {
                "adminUrls": [f"http://127.0.0.1:{dead_api}"],
            },
        ),
        subject_manifest(
            "rl-secret",
            stack,
            {
                **good,
                "redisUrl": f"redis://:{SECRET}@127.0.0.1:{dead_redis}/0",
            },
        ),
    )
    before = last_observed(rl_env)

    ready = wait_for(
        "the rejected config",
        lambda: (c := condition(rl_env.subject("rl-badconfig"), "Ready")).get("reason") and c,
    )
    assert ready["status"] == "False" and ready["reason"] == "InvalidConfig"
    for field in ("adminUrls", "latencyWindow", "maxKeys"):
        assert field in ready["message"], ready["message"]

    msg = failing(rl_env, "rl-garbage")["message"]
    assert garbage_prometheus in msg and "Prometheus" in msg, msg
    assert "JSON" in msg or "Expecting value" in msg, msg  # what was wrong with the answer

    msg = failing(rl_env, "rl-unreachable")["message"]
    assert f"http://127.0.0.1:{dead_api}/admin/nodes" in msg and "unreachable" in msg, msg

    failing_secret = failing(rl_env, "rl-secret")
    msg = failing_secret["message"]
    assert f"redis://***@127.0.0.1:{dead_redis}/0" in msg and "Redis" in msg, msg
    status = rl_env.subject("rl-secret")["status"]
    assert SECRET not in str(status)
    events = rl_env.ns.kubectl("get", "events", "-o", "yaml").stdout
    assert SECRET not in events

    for name in ("rl-garbage", "rl-unreachable", "rl-secret"):
        assert rl_env.subject(name)["status"]["health"] == "Unknown"
    # Meanwhile the healthy Subject was observed all along, and still is.
    wait_for("the good Subject observed since", lambda: last_observed(rl_env) > before)
    assert rl_env.healthy()
    for name in ("rl-garbage", "rl-badconfig", "rl-unreachable", "rl-secret"):
        rl_env.ns.kubectl("delete", "subject", name, "--wait=false")
