"""IncidentTools bounds every read before redacting it, and never lets an output format hide
the key names that redaction relies on.

kubectl here is either the real one (against the recording server, for the argv it is given)
or, where the test needs a kubectl that prints a lot, a script standing in for it; the pod log
API is a small HTTP server on 127.0.0.1 that answers like the API server does (it honours
`tailLines` and `limitBytes`) and records every query."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from aiops.agent.base import ToolError
from aiops.agent.tools import MAX_KUBECTL_STDOUT, MAX_LOG_BYTES
from aiops.redact import REDACTED
from tests.fixtures.scripted_anthropic import ScriptedAnthropic
from tests.unit.agent.support import harness, write_kubeconfig

# -- output formats ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "output",
    [
        ["-o", "jsonpath={.items[*].spec.containers[*].env[*].value}"],
        ["-o=jsonpath-as-json={.items[*].spec.containers[*].env}"],
        ["--output", "go-template={{range .items}}{{.spec}}{{end}}"],
        ["-o", "custom-columns=PW:.spec.containers[*].env[*].value"],
        ["--template", "{{.spec}}"],
    ],
)
async def test_template_output_formats_are_refused(output: list[str]) -> None:
    # Refused before kubectl is even looked for: this harness has none.
    with pytest.raises(ToolError, match=r"template|--template is not allowed"):
        await harness().tools.kubectl(["get", "pods", *output])


async def test_kubectl_logs_is_bounded_in_bytes(
    scripted_anthropic: ScriptedAnthropic, kubectl: Path, tmp_path: Path
) -> None:
    config = write_kubeconfig(tmp_path / "kubeconfig", scripted_anthropic.base_url)
    h = harness(kube_url=scripted_anthropic.base_url, kubectl=kubectl, kubeconfig=config)
    result = await h.tools.kubectl(["logs", "web-0"])
    assert f"--limit-bytes={MAX_LOG_BYTES}" in result["argv"]
    assert "--tail=200" in result["argv"]
    kept = await h.tools.kubectl(["logs", "web-0", "--limit-bytes", "1000"])
    assert kept["argv"].count("--limit-bytes") == 1 and "1000" in kept["argv"]
    with pytest.raises(ToolError, match=f"--limit-bytes must be 1 to {MAX_LOG_BYTES}"):
        await h.tools.kubectl(["logs", "web-0", "--limit-bytes", str(10 * MAX_LOG_BYTES)])


def fake_kubectl(tmp_path: Path, script: str) -> Path:
    """A stand-in for kubectl that prints what `script` (sh) prints, whatever it is asked."""
    path = tmp_path / "kubectl"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


async def test_oversized_kubectl_output_is_cut_and_kubectl_stopped(tmp_path: Path) -> None:
    # Seven megabytes, from one process (`exec`), as kubectl is.
    big = fake_kubectl(
        tmp_path,
        "exec awk 'BEGIN { for (i = 0; i < 200000; i++) "
        'print "GET /healthz 200 password=fakeawkpw" }\'',
    )
    h = harness(kubectl=big)
    started = time.monotonic()
    result = await h.tools.kubectl(["get", "pods", "-o", "wide"])
    assert time.monotonic() - started < 8  # the harness's kubectl timeout is 10 s
    assert f"stopped after {MAX_KUBECTL_STDOUT} bytes" in result["cut"]
    assert "fakeawkpw" not in json.dumps(result)


async def test_json_output_is_redacted_as_data(tmp_path: Path) -> None:
    # A layout that no text pattern could read: the value first, another key in between.
    pods = {
        "kind": "PodList",
        "apiVersion": "v1",
        "items": [
            {
                "spec": {
                    "containers": [
                        {
                            "name": "redis",
                            "env": [
                                {"value": "fakeoddpw", "foo": 1, "name": "REDIS_PASSWORD"},
                                {"name": "REDIS_HOST", "value": "redis.shop.svc"},
                            ],
                        }
                    ]
                }
            }
        ],
    }
    (tmp_path / "pods.json").write_text(json.dumps(pods, indent=2))
    h = harness(kubectl=fake_kubectl(tmp_path, f'cat "{tmp_path}/pods.json"'))
    result = await h.tools.kubectl(["get", "pods", "-o", "json"])
    env = result["stdout"]["items"][0]["spec"]["containers"][0]["env"]
    assert env == [
        {"value": REDACTED, "foo": 1, "name": "REDIS_PASSWORD"},
        {"name": "REDIS_HOST", "value": "redis.shop.svc"},
    ]


# -- pod logs ----------------------------------------------------------------------------------


class FakeLogs(BaseHTTPRequestHandler):
    """GET a pod (one container, "app") and its log: `lines` numbered lines of `line_bytes`,
    the last `tailLines` of them, then at most `limitBytes` bytes, as the API server does."""

    lines = 1000
    line_bytes = 1000
    line: ClassVar[bytes] = b""  # the log line's text, when a test sets one (any bytes)
    queries: ClassVar[list[dict[str, list[str]]]] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path.endswith("/log"):
            query = parse_qs(url.query)
            type(self).queries.append(query)
            tail = int(query.get("tailLines", [str(self.lines)])[0])
            first = self.lines - min(tail, self.lines)
            body = b"".join(
                (self.line or f"line {n:05d} password=fakelogpw ".encode()).ljust(
                    self.line_bytes - 1, b"."
                )
                + b"\n"
                for n in range(first, self.lines)
            )
            if "limitBytes" in query:
                body = body[: int(query["limitBytes"][0])]
            self._send(body, "text/plain")
        else:
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web-0"},
                "spec": {"containers": [{"name": "app", "image": "x"}]},
            }
            self._send(json.dumps(pod).encode(), "application/json")

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def log_server() -> Iterator[str]:
    FakeLogs.queries, FakeLogs.lines, FakeLogs.line_bytes, FakeLogs.line = [], 1000, 1000, b""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLogs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_pod_logs_are_bounded_in_bytes_and_show_the_newest_lines(log_server: str) -> None:
    h = harness(kube_url=log_server)
    result = await h.tools.pod_logs("web-0", tail=1000)

    # Every read asked the API server for at most MAX_LOG_BYTES.
    assert FakeLogs.queries and all(
        q["limitBytes"] == [str(MAX_LOG_BYTES)] for q in FakeLogs.queries
    )
    # A megabyte was asked for: the second read asked for the newest lines that fit.
    fit = MAX_LOG_BYTES // FakeLogs.line_bytes
    assert [q["tailLines"] for q in FakeLogs.queries] == [["1000"], [str(fit)]]
    text = json.dumps(result)
    assert f"only the last {fit} lines fit in {MAX_LOG_BYTES} bytes" in text
    assert "line 00999" in text  # the newest line
    assert "fakelogpw" not in text


async def test_a_single_oversized_line_is_not_shown_half(log_server: str) -> None:
    FakeLogs.lines, FakeLogs.line_bytes = 1, 2 * MAX_LOG_BYTES
    result = await harness(kube_url=log_server).tools.pod_logs("web-0", tail=1)
    assert result["logs"]["app"] == ""  # the cut line is dropped whole
    assert f"cut at {MAX_LOG_BYTES} bytes" in json.dumps(result)


async def test_a_log_that_is_not_utf8_is_shown_not_failed(log_server: str) -> None:
    # Latin-1 and stray bytes: the read does not fail (it did, as "API unreachable"), each
    # bad byte shows as U+FFFD, the rest of each line as it is.
    FakeLogs.lines, FakeLogs.line_bytes = 3, 40
    FakeLogs.line = b"caf\xe9 \xff\xfe\x00 GET /check 200"
    result = await harness(kube_url=log_server).tools.pod_logs("web-0", tail=3)
    log = result["logs"]["app"]
    assert log.count("caf\ufffd \ufffd\ufffd\x00 GET /check 200") == 3, log
    assert "cut" not in result


async def test_a_character_cut_by_the_byte_limit_does_not_fail_the_read(log_server: str) -> None:
    # Lines of two-byte characters, the byte limit falling inside one: the newest whole
    # lines are shown.
    FakeLogs.lines, FakeLogs.line_bytes = 1000, 1001
    FakeLogs.line = "é".encode() * 500
    result = await harness(kube_url=log_server).tools.pod_logs("web-0", tail=1000)
    fit = MAX_LOG_BYTES // FakeLogs.line_bytes
    text = json.dumps(result)
    assert f"only the last {fit} lines fit" in text, text[:500]
    assert "no log" not in text and "u00e9" in text  # the lines, shown (clipped to budget)
