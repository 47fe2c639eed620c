"""The operator's log lines: JSON lines that parse, with the names of what each concerns (from
kopf's object reference, the daemon's context, or the line), and nothing secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import kopf
from kopf._core.actions.loggers import make_formatter

from aiops import logs
from aiops.redact import Redactor

KEY = "sk-ant-api03-neverinalog-0123456789abcdef"


def _json_lines(emit: object) -> list[dict[str, object]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(make_formatter(kopf.LogFormat.JSON, log_prefix=None, log_refkey="object"))
    handler.addFilter(logs.FILTER)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        assert callable(emit)
        emit()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_names_and_no_secret() -> None:
    redactor = Redactor()
    redactor.register(KEY)
    logs.redact_with(redactor)
    body = {"apiVersion": "aiops.dev/v1alpha1", "kind": "Chaos"}
    body["metadata"] = {"name": "lat-1", "namespace": "ns1", "uid": "u"}  # type: ignore[assignment]

    async def daemon() -> None:
        logs.bind(namespace="ns1", incident="inc-1", subject="rl")
        logging.getLogger("aiops.x").info("step with %s", KEY)
        try:
            raise RuntimeError(f"boom {KEY}")
        except RuntimeError:
            logging.getLogger("aiops.x").exception("failed")

    def emit() -> None:
        asyncio.run(daemon())
        kopf_logger = kopf.ObjectLogger(body=body, settings=kopf.OperatorSettings())  # type: ignore[arg-type]
        kopf_logger.info("Handler succeeded.")
        logging.getLogger("aiops.y").info("no object here")

    step, failed, kopfs, plain = _json_lines(emit)
    assert step["incident"] == "inc-1" and step["subject"] == "rl" and step["namespace"] == "ns1"
    assert "[REDACTED]" in str(step["message"]) and KEY not in json.dumps(failed)
    assert "RuntimeError" in str(failed["exc_info"]) and failed["severity"] == "error"
    assert kopfs["chaos"] == "lat-1" and kopfs["namespace"] == "ns1"
    assert "incident" not in plain and plain["message"] == "no object here"
