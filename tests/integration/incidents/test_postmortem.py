"""`aiops postmortem` on real incidents, run through the real incident loop (the operator
in-process, Claude reached by the real SDK at the scripted server): one fault injected by a
Chaos and Resolved, one escalated by the model. Every section is there, the times agree with
the Incident's status, the audit log is verified, and a secret-looking API key the model
repeated into its diagnosis, rationale and escalation is nowhere in it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aiops.postmortem import SECTIONS
from aiops.postmortem.render import duration
from ratelimiter.localstack import LocalStack
from tests.fixtures.chaos_env import chaos_manifest
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.incident_loop import (
    Drift,
    LoopEnv,
    aiops,
    incident_of,
    operator_with_model,
)
from tests.fixtures.polling import wait_for
from tests.fixtures.scripted_anthropic import ScriptedAnthropic, reply, tool_use

FAKE_KEY = "sk-ant-api03-FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE-postmortem"
PLANTED = "sk-ant-api03-PLANTEDplantedPLANTEDplanted0123456789-zz"  # the model repeats it


@pytest.fixture(scope="module")
def pm_env(
    aiops_api: ClusterHandle,
    rl_stack: LocalStack,
    tmp_path_factory: pytest.TempPathFactory,
    _scripted_anthropic_server: ScriptedAnthropic,
) -> Iterator[tuple[LoopEnv, ScriptedAnthropic]]:
    server = _scripted_anthropic_server
    for env in operator_with_model(
        aiops_api,
        rl_stack,
        tmp_path_factory.mktemp("pm-audit"),
        "postmortem",
        server.base_url,
        FAKE_KEY,
        AIOPS_VERIFY_TIMEOUT="20",
    ):
        env.subject("rl-pm", "execute", cooldown="0s")
        yield env, server


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def postmortem(env: LoopEnv, name: str, tmp_path: Path, *more: str) -> str:
    out = tmp_path / f"{name}.md"
    proc = aiops(env, "postmortem", name, "-n", env.ns.namespace, "--out", str(out), *more)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out.read_text()


def check_common(text: str, st: dict[str, Any]) -> None:
    assert [line[3:] for line in text.splitlines() if line.startswith("## ")] == list(SECTIONS)
    assert "**Audit log: verified.**" in text
    assert f"(seq {st['auditHead']['seq']})" in text  # its end checked against status
    for secret in (PLANTED, FAKE_KEY):
        assert secret not in text
    assert "\x1b" not in text


def test_a_chaos_fault_resolved_by_claude(
    pm_env: tuple[LoopEnv, ScriptedAnthropic], tmp_path: Path
) -> None:
    env, server = pm_env
    key = f"pm-{uuid.uuid4().hex[:6]}"
    server.script(
        [
            reply(tool_use("observe_subject")),
            reply(
                tool_use(
                    "propose_action",
                    {
                        "action": "reset_counter",
                        "params": {"key": key},
                        "rationale": f"entries dated ahead; the client used key {PLANTED}",
                    },
                )
            ),
            reply(tool_use("resolve", {"summary": f"{key} drifted (seen with {PLANTED})"})),
        ]
    )
    env.apply(
        chaos_manifest(
            "pm-drift",
            "counter_drift",
            {"member": key},
            duration="90s",
            params={"entries": 12},
            subject="rl-pm",
        )
    )
    try:
        (name,) = wait_for(
            "an Incident linked to the Chaos",
            lambda: (env.get("chaos", "pm-drift").get("status") or {}).get("incidents"),
            60,
        )
        inc = env.wait_phase(name, "Resolved", "Escalated", timeout=90)
        st = inc["status"]
        assert st["phase"] == "Resolved", st.get("escalationReason")

        text = postmortem(env, name, tmp_path, "--configmap")
        check_common(text, st)
        fault, detected, resolved = ts(st["faultAt"]), ts(st["detectedAt"]), ts(st["resolvedAt"])
        ttd = duration((detected - fault).total_seconds())
        ttr = duration((resolved - fault).total_seconds())
        assert f"- **Time to detect (TTD):** {ttd}" in text
        assert f"- **Time to resolve (TTR):** {ttr}" in text
        assert f"- **Impact window:** {ttr}" in text
        assert "Chaos pm-drift (fault counter_drift)" in text
        assert f"- **Parameters:** `{json.dumps({'key': key})}`" in text
        assert "- **Gate at proposal:** run" in text and "- **Gate at run time:** run" in text
        assert "- **Ran:** " in text and ": Succeeded: " in text
        assert "- **Verification:** the invariant held" in text
        assert "| observe_subject |" in text and "| propose_action |" in text
        agent = st["agent"]
        assert f"- **Tokens:** {agent['inputTokens']} in, {agent['outputTokens']} out" in text
        assert f"- **Turns:** {agent['turns']} (3 model requests)" in text

        cm = json.loads(
            env.ns.kubectl("get", "configmap", f"postmortem-{name}", "-o", "json").stdout
        )
        assert cm["metadata"]["labels"]["aiops.dev/incident"] == name
        stored = cm["data"]["postmortem.md"]
        assert stored.split("\n", 3)[3] == text.split("\n", 3)[3]  # but the generation time
    finally:
        env.ns.kubectl("delete", "chaos", "pm-drift", "--timeout=60s")


def test_an_incident_claude_escalated(
    pm_env: tuple[LoopEnv, ScriptedAnthropic], tmp_path: Path
) -> None:
    env, server = pm_env
    server.script(
        [
            reply(
                tool_use(
                    "escalate",
                    {
                        "reason": f"the drift came from a client holding {PLANTED}; rotate it",
                        "summary": "a person must look",
                    },
                )
            )
        ]
    )
    drift = Drift(env.stack)
    try:
        drift.cause()
        name = incident_of(env, "rl-pm", drift.key, timeout=60)
        inc = env.wait_phase(name, "Resolved", "Escalated", timeout=90)
        st = inc["status"]
        assert st["phase"] == "Escalated"
        text = postmortem(env, name, tmp_path)
        check_common(text, st)
        assert "- **Outcome:** Escalated to a person: the drift came from a client holding" in text
        (escalated,) = [e for e in st["timeline"] if e.get("phase") == "Escalated"]
        detected = ts(st["detectedAt"])
        if st.get("faultAt"):  # the subject loop linked it to a Chaos still recovering
            start, since = ts(st["faultAt"]), "(from the fault)"
            ttd = duration((detected - start).total_seconds())
            assert f"- **Time to detect (TTD):** {ttd}" in text
        else:
            start, since = detected, "(from detection)"
            assert "- **Time to detect (TTD):** unknown (no fault time" in text
        took = duration((ts(escalated["time"]) - start).total_seconds())
        assert f"- **Time to escalate:** {took} {since}" in text
        assert "No action was proposed." in text
    finally:
        drift.undo()
