"""The anthropic agent under a hostile model and hostile tool output, through the real SDK and
the scripted Messages API server: refused and failed calls are counted and end the
investigation at a limit; no secret in tool output (or in the incident) reaches a request to
the model; and redacting a large or crafted output never stalls the event loop."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any, ClassVar

import pytest

from aiops.agent.anthropic_agent import AgentDefaults
from aiops.agent.base import Investigation
from tests.fixtures.scripted_anthropic import (
    FAKE_KEY,
    ScriptedAnthropic,
    reply,
    stall,
    text,
    thinking,
    tool_use,
)
from tests.unit.agent.support import DemoPlugin, harness, incident, subject
from tests.unit.agent.test_anthropic_agent import (
    AGENT_SPEC,
    investigate,
    make_agent,
    resolve,
    tool_results,
)


def refused_proposal(n: int = 0) -> dict[str, Any]:
    # High risk: the test policy refuses it under autonomy propose.
    return tool_use(
        "propose_action",
        {
            "action": "wipe_member_data",
            "params": {"member": "node-2"},
            "rationale": f"attempt {n}: wipe it",
        },
    )


# -- refused and failed calls are limited ------------------------------------------------------


async def test_a_model_that_keeps_proposing_refused_actions_is_escalated(
    scripted_anthropic: ScriptedAnthropic,
) -> None:
    h = harness()
    # One refused proposal a turn, more turns than the limit allows, then a resolve that a
    # looping model would reach only by luck.
    scripted_anthropic.script([reply(refused_proposal(n)) for n in range(6)] + [resolve()])
    result = await investigate(scripted_anthropic, h, max_refused_per_session=3)

    assert result.outcome == "escalate" and result.steps == []
    reason = result.escalation_reason or ""
    assert "3 refused or failed tool calls in this investigation" in reason
    assert "the limit is 3" in reason and "3 refused proposal(s)" in reason
    assert "escalating" in reason
    assert len(scripted_anthropic.requests) == 3  # no fourth request
    assert [d["decision"] for d in h.audit.of("policy.decision")] == ["refused"] * 3
    assert h.audit.of("agent.refusal_limit")[0]["reason"] == reason
    assert h.audit.of("agent.end")[0]["escalation_reason"] == reason
    assert h.plugin.executed == []


async def test_a_turn_full_of_refused_and_failed_calls_ends_the_investigation(
    scripted_anthropic: ScriptedAnthropic,
) -> None:
    h = harness()
    scripted_anthropic.script(
        [
            reply(
                refused_proposal(1),
                tool_use("kubectl", {"argv": ["delete", "pods", "--all"]}),  # a refused read
                tool_use("no_such_tool"),  # an unknown tool
                tool_use("promql_query", {"query": "up"}),  # fails: no Prometheus
                tool_use("resolve", {"summary": "never reached"}),
            ),
            resolve(),
        ]
    )
    result = await investigate(scripted_anthropic, h, max_refused_per_turn=3)

    assert result.outcome == "escalate"
    reason = result.escalation_reason or ""
    assert "3 refused or failed tool calls in one turn (the limit is 3" in reason
    assert "1 refused proposal(s), 2 refused or failed tool call(s)" in reason
    assert len(scripted_anthropic.requests) == 1
    # The calls after the limit were not run, and the audit log says so.
    skipped = [c for c in h.audit.of("tool.call") if c.get("skipped")]
    assert [c["name"] for c in skipped] == ["promql_query", "resolve"]


async def test_the_count_survives_a_restart(scripted_anthropic: ScriptedAnthropic) -> None:
    h = harness()
    scripted_anthropic.script([reply(refused_proposal(1)), reply(refused_proposal(2)), stall(3)])
    limits: dict[str, Any] = {"max_refused_per_session": 3, "request_timeout": 10.0}
    task = asyncio.create_task(investigate(scripted_anthropic, h, **limits))
    await asyncio.to_thread(scripted_anthropic.wait_for_requests, 3)
    task.cancel()  # the operator stops while the third request is in flight
    with pytest.raises(asyncio.CancelledError):
        await task
    assert h.checkpoint.state is not None and h.checkpoint.state["refused_proposals"] == 2

    scripted_anthropic.script([reply(refused_proposal(3)), resolve()])
    result = await investigate(scripted_anthropic, h, **limits)
    assert result.outcome == "escalate"
    assert "3 refused or failed tool calls in this investigation" in (
        result.escalation_reason or ""
    )


# -- secrets never reach the model ---------------------------------------------------------------

REGISTERED = "fake-registered-db-secret-0123456789"
SECRETS = (
    "fakeenvpw1",
    "fakeenvpw2",
    "fakerequirepass",
    "fakeurlpw",
    "fakeargpw",
    "fakeprobepw",
    "fakeclipw",
    "fakeauthpw",
    "fakeerrorpw",
    "fakesummarypw",
    FAKE_KEY,
    REGISTERED,
)


class LeakyPlugin(DemoPlugin):
    """A subject whose state carries secrets the way real subjects' does; its second
    observation fails with a secret in the error."""

    observed: ClassVar[int] = 0

    async def observe(self) -> Any:
        type(self).observed += 1
        if type(self).observed > 1:
            raise RuntimeError("connect failed: redis://default:fakeerrorpw@redis:6379")
        return await super().observe()


async def test_no_secret_in_tool_output_reaches_a_request_to_the_model(
    scripted_anthropic: ScriptedAnthropic,
) -> None:
    h = harness()
    h.redactor.register(REGISTERED)
    LeakyPlugin.observed = 0
    plugin = LeakyPlugin(h.plugin.config, h.plugin.ctx)
    h.tools.plugin = plugin
    encoded = base64.b64encode(f"password={REGISTERED}\n".encode()).decode()
    plugin.facts |= {
        "pod": {
            "spec": {
                "containers": [
                    {
                        "env": [
                            {"name": "REDIS_PASSWORD", "value": "fakeenvpw1"},
                            {"name": "MASTER_AUTH", "value": "fakeenvpw2"},
                        ],
                        "args": ["redis-server", "--requirepass", "fakeargpw"],
                        "livenessProbe": {
                            "exec": {"command": ["redis-cli", "-a", "fakeprobepw", "ping"]}
                        },
                    }
                ]
            }
        },
        "redis_conf": "port 6379\nrequirepass fakerequirepass\n",
        "log": "connecting to redis://app:fakeurlpw@redis:6379\n"
        "$ redis-cli -h redis -a fakeclipw ping\n> AUTH default fakeauthpw\n",
        "secret_data": encoded,
        "echo": f"key in use: {FAKE_KEY}",
    }
    scripted_anthropic.script(
        [
            reply(tool_use("observe_subject")),
            reply(tool_use("observe_subject")),  # this one fails, with a secret in the error
            resolve(),
        ]
    )
    inv = Investigation(
        incident=incident("node-2 is down; its log says AUTH fakesummarypw failed"),
        subject=subject(AGENT_SPEC),
        plugin=LeakyPlugin,
        tools=h.tools,
        audit=h.audit,
        checkpoint=h.checkpoint,
    )
    result = await make_agent(scripted_anthropic).investigate(inv)
    assert result.outcome == "plan"

    bodies = [json.dumps(r.body) for r in scripted_anthropic.requests]
    assert len(bodies) == 3
    for secret in SECRETS:
        for n, body in enumerate(bodies):
            assert secret not in body, f"{secret!r} reached request {n}"
        assert secret not in json.dumps(h.audit.records), f"{secret!r} reached the audit log"
    # The model still sees what matters, with the secrets masked.
    (observed,) = tool_results(scripted_anthropic, 1)
    assert "REDIS_PASSWORD" in observed["content"] and "[REDACTED]" in observed["content"]
    (failed,) = tool_results(scripted_anthropic, 2)
    assert failed["is_error"] and "observation failed" in failed["content"]


async def test_the_checkpoint_keeps_the_models_words_redacted_and_its_thinking_intact(
    scripted_anthropic: ScriptedAnthropic,
) -> None:
    # A model that writes a secret (a credential by its shape) in its text and in a tool call's
    # input: the checkpoint on disk holds neither, while its signed thinking block is kept byte
    # for byte (the API refuses an altered one on resume).
    h = harness()
    key = "AKIAFAKEFAKEFAKE1234"
    thought = thinking("node-2 looks down; restart it", signature="c2lnbmF0dXJl")
    propose = tool_use(
        "propose_action",
        {
            "action": "restart_member",
            "params": {"member": "node-2"},
            "rationale": f"restart it; the key {key} still works",
        },
    )
    scripted_anthropic.script([reply(thought, text(f"The key is {key}."), propose), resolve()])
    result = await investigate(scripted_anthropic, h)
    assert result.outcome == "plan", result.escalation_reason
    assert h.checkpoint.saves, "no checkpoint was saved"
    saved = json.dumps(h.checkpoint.saves)
    assert key not in saved
    assistant = next(m for m in h.checkpoint.saves[0]["messages"] if m["role"] == "assistant")
    kinds = [b["type"] for b in assistant["content"]]
    assert kinds == ["thinking", "text", "tool_use"], kinds
    assert assistant["content"][0] == thought  # signed: untouched
    assert "[REDACTED]" in assistant["content"][1]["text"]
    assert assistant["content"][2]["input"]["params"] == {"member": "node-2"}  # the call is kept
    assert "[REDACTED]" in assistant["content"][2]["input"]["rationale"]


# -- the event loop keeps serving --------------------------------------------------------------


async def test_redacting_a_crafted_tool_output_never_stalls_the_event_loop(
    scripted_anthropic: ScriptedAnthropic,
) -> None:
    h = harness()
    # 60 KB that the old URL pattern took seconds over, and 3 MB of ordinary log.
    h.plugin.facts |= {"crafted": "a." * 30_000, "log": "GET /healthz 200\n" * 180_000}
    scripted_anthropic.script([reply(tool_use("observe_subject")), resolve()])
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    try:
        result = await investigate(scripted_anthropic, h)
    finally:
        task.cancel()
    assert result.outcome == "plan"
    # Redaction ran in worker threads: the loop answered every 10 ms tick within a second
    # (generous, for a loaded machine; the unbounded redaction on the loop took far longer).
    assert gaps and max(gaps) < 1.0, f"the event loop stalled for {max(gaps):.2f}s"
    (observed,) = tool_results(scripted_anthropic, 1)
    assert len(observed["content"]) <= AgentDefaults().tool_result_budget
