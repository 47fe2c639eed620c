"""The `anthropic` agent: Claude investigates through tool use, within budgets, and proposes
a plan that the policy gate checks step by step.

The model never mutates anything. Its tools read (through the incident's `Toolbox`), and
`propose_action` only adds a step to the plan after the gate's preview says it could run or
wait for approval; a refused step is not added, and the refusal goes back to the model and into
the audit log. The incident loop asks the gate again before each step runs.

A model that keeps making calls that are refused or fail (proposals the gate refuses, tool
inputs that are invalid, reads that are refused) is not left to loop until its turns run out:
at `max_refused_per_turn` in one turn, or `max_refused_per_session` in the investigation,
the agent escalates and says so. Tool results are redacted, and bounded first, in a worker
thread before they go into the conversation, and so before any request to the model.

A session survives the operator: after every completed turn the conversation, the plan, the
usage and the refusal count are saved to the incident's checkpoint, and `investigate` resumes
from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anthropic
from pydantic import BaseModel, ValidationError

from aiops import metrics
from aiops.actions import action_names, find_action
from aiops.agent.base import (
    AgentResult,
    DiagnosisResult,
    Investigation,
    PlanStep,
    ToolError,
    Usage,
)
from aiops.agent.messages_api import (
    ModelTurn,
    ModelUnavailable,
    RetryPolicy,
    ToolCall,
    call_with_retries,
)
from aiops.agent.pricing import PRICES, Price, cost_usd
from aiops.agent.prompts import MAX_TOKENS_NUDGE, SYSTEM_PROMPT, TEXT_ONLY_NUDGE, first_message
from aiops.agent.session import SavedSession, TokenCounts, compact, masked
from aiops.agent.tool_schemas import (
    TOOL_INPUTS,
    EscalateInput,
    K8sGetInput,
    KubectlInput,
    PodLogsInput,
    PromqlInput,
    PromqlRangeInput,
    ProposeInput,
    ResolveInput,
    tool_definitions,
)
from aiops.api import AgentSpec, to_timedelta
from aiops.policy.gate import validate_params
from aiops.redact import Redactor, clip, truncate
from aiops.vocabulary import Verdict

DEFAULT_MODEL = "claude-sonnet-5-5"


@dataclass(frozen=True)
class AgentDefaults:
    """The operator's defaults; `Subject.spec.agent` overrides the first four per subject.
    The refusal limits are operator settings (`aiops.settings`, AIOPS_AGENT_MAX_REFUSED_*),
    checked there at start."""

    model: str = DEFAULT_MODEL
    max_turns: int = 20
    max_tokens: int = 4096
    time_budget: timedelta = timedelta(minutes=10)
    request_timeout: float = 120.0  # one attempt, seconds
    max_plan_steps: int = 5
    tool_result_budget: int = 12_000  # characters of one tool result sent to the model
    checkpoint_budget: int = 600_000  # characters of conversation kept in a checkpoint
    # Refused or failed tool calls (a refused proposal, invalid input, a refused read, a tool
    # that failed) tolerated in one model turn, and in the whole investigation: at the limit
    # the agent escalates instead of letting the model go on trying.
    max_refused_per_turn: int = 8
    max_refused_per_session: int = 12


@dataclass(frozen=True)
class Settings:
    model: str
    max_turns: int
    max_tokens: int
    time_budget_s: float
    prompt_addendum: str | None = None


def settings_for(spec: AgentSpec | None, defaults: AgentDefaults) -> Settings:
    spec = spec or AgentSpec()
    budget = to_timedelta(spec.time_budget) if spec.time_budget else defaults.time_budget
    return Settings(
        model=spec.model or defaults.model,
        max_turns=spec.max_turns or defaults.max_turns,
        max_tokens=spec.max_tokens or defaults.max_tokens,
        time_budget_s=budget.total_seconds(),
        prompt_addendum=spec.system_prompt_addendum,
    )


class _Decision(BaseModel):
    """The part of the gate's preview the agent acts on; anything unreadable is a refusal."""

    decision: Verdict
    reason: str = ""


class AnthropicAgent:
    """Claude through the official SDK. Give `api_key` (and `base_url` for a stand-in): the
    agent makes a client per investigation and closes it. Or give `client_factory`, called
    once per investigation: its clients are the caller's (they may be shared), never closed
    here; the agent uses a copy with the SDK's retries off. Without `defaults`, the built-in
    ones (the operator passes its settings' through `aiops.agent.factory`)."""

    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        client_factory: Callable[[], anthropic.AsyncAnthropic] | None = None,
        defaults: AgentDefaults | None = None,
        retry: RetryPolicy | None = None,
        prices: Mapping[str, Price] = PRICES,
        redactor: Redactor | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._client_factory = client_factory
        self.defaults = defaults or AgentDefaults()
        self.retry = retry or RetryPolicy()
        self.prices = prices
        # Tool results go to a third party: mask secrets again, the API key above all.
        self.redactor = redactor or Redactor()
        if api_key:
            self.redactor.register(api_key)
        self._sleep = sleep

    def _client(self) -> tuple[anthropic.AsyncAnthropic, bool]:
        """(client, whether this investigation owns it and must close it)."""
        if self._client_factory is not None:
            # Retries are ours, so that each attempt is audited and the time budget kept.
            return self._client_factory().with_options(max_retries=0), False
        client = anthropic.AsyncAnthropic(
            api_key=self._api_key,
            base_url=self._base_url,
            max_retries=0,
            timeout=self.defaults.request_timeout,
        )
        return client, True

    async def investigate(self, inv: Investigation) -> AgentResult:
        settings = settings_for(inv.subject.spec.agent, self.defaults)
        session = _Session(self, inv, settings)
        try:
            return await session.run()
        except asyncio.CancelledError:
            raise  # SIGTERM: the checkpoint of the last completed turn stays for the next one
        except Exception as err:  # never crash the incident loop: a person takes over
            reason = f"internal error in the anthropic agent: {type(err).__name__}: {err}"
            with contextlib.suppress(Exception):
                return await session.finish_escalation(self.redactor.redact_text(reason))
            return AgentResult(
                outcome="escalate",
                diagnosis=DiagnosisResult(summary="The investigation failed."),
                escalation_reason=self.redactor.redact_text(reason),
                usage=Usage(backend="anthropic", model=settings.model),
            )


@dataclass
class _Session:
    agent: AnthropicAgent
    inv: Investigation
    settings: Settings
    messages: list[dict[str, Any]] = field(default_factory=list)
    plan: list[PlanStep] = field(default_factory=list)
    tokens: TokenCounts = field(default_factory=TokenCounts)
    turns: int = 0
    elapsed_before: float = 0.0  # seconds spent by earlier operators on this session
    audited: int = 0  # messages already written to the audit log
    refused_proposals: int = 0  # proposals the agent or the gate refused, this session
    failed_calls: int = 0  # other tool calls that were refused or failed, this session
    started: float = field(default_factory=time.monotonic)

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> AgentResult:
        await self._start()
        await self._restore()
        client, owned = self.agent._client()
        try:
            return await self._loop(client)
        finally:
            if owned:
                with contextlib.suppress(Exception):
                    await client.close()

    async def _start(self) -> None:
        s = self.settings
        data: dict[str, Any] = {
            "backend": "anthropic",
            "model": s.model,
            "max_turns": s.max_turns,
            "max_tokens": s.max_tokens,
            "time_budget_s": s.time_budget_s,
            "retry": dataclasses.asdict(self.agent.retry),
        }
        spec = self.inv.subject.spec.agent
        if spec is not None and spec.temperature is not None:
            data["temperature_not_sent"] = (
                f"spec.agent.temperature {spec.temperature:g} is not sent: API version "
                "2026-10-21, which the anthropic SDK 2.x uses, rejects sampling parameters"
            )
        await self.inv.audit("agent.start", data)

    async def _restore(self) -> None:
        try:
            raw = await self.inv.checkpoint.load()
        except Exception as err:  # an unreadable checkpoint costs a fresh start, no more
            await self.inv.audit("agent.checkpoint_unreadable", {"error": type(err).__name__})
            raw = None
        if raw:
            try:
                saved = SavedSession.model_validate(raw)
            except ValidationError as err:
                await self.inv.audit("agent.checkpoint_unreadable", {"error": str(err)[:500]})
            else:
                self.messages = saved.messages
                self.plan = saved.plan
                self.tokens = saved.usage
                self.turns = saved.turns
                self.refused_proposals = saved.refused_proposals
                self.failed_calls = saved.failed_calls
                self.elapsed_before = saved.elapsed_s
                self.audited = len(self.messages)  # audited by the operator that wrote it
                await self.inv.audit(
                    "agent.resumed",
                    {
                        "turns": self.turns,
                        "messages": len(self.messages),
                        "plan": [s.model_dump() for s in self.plan],
                        "elapsed_s": round(self.elapsed_before, 3),
                    },
                )
                return
        s = self.settings
        # The incident's summary and evidence come from status and plugins: masked too.
        text = first_message(self.inv, max_turns=s.max_turns, time_budget_s=s.time_budget_s)
        self.messages = [{"role": "user", "content": self.agent.redactor.redact_text(text)}]

    def _elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def _deadline(self) -> float:
        return self.started + self.settings.time_budget_s - self.elapsed_before

    async def _save(self) -> None:
        messages, clipped = compact(self.messages, self.agent.defaults.checkpoint_budget)
        if clipped:
            await self.inv.audit("agent.checkpoint_compacted", {"tool_results_clipped": clipped})
        redact = self.agent.redactor.redact_text
        state = SavedSession(
            messages=masked(messages, self.agent.redactor),
            # The rationale is the model's words; the action and params are what will run.
            plan=[s.model_copy(update={"rationale": redact(s.rationale)}) for s in self.plan],
            usage=self.tokens,
            turns=self.turns,
            elapsed_s=self._elapsed(),
            model=self.settings.model,
            refused_proposals=self.refused_proposals,
            failed_calls=self.failed_calls,
        )
        try:
            await self.inv.checkpoint.save(state.model_dump(mode="json"))
        except Exception as err:  # a lost checkpoint costs a restart, not the investigation
            await self.inv.audit("agent.checkpoint_failed", {"error": f"{type(err).__name__}"})

    # -- the turn loop -------------------------------------------------------------------------

    async def _loop(self, client: anthropic.AsyncAnthropic) -> AgentResult:
        s = self.settings
        while True:
            if self.turns >= s.max_turns:
                return await self.finish_escalation(
                    f"the model used its {s.max_turns} turns without resolving or escalating"
                )
            if time.monotonic() >= self._deadline():
                return await self.finish_escalation(
                    f"the time budget of {s.time_budget_s:g}s ran out after {self.turns} turns"
                )
            try:
                turn = await call_with_retries(
                    client,
                    self._request(),
                    policy=self.agent.retry,
                    deadline=self._deadline(),
                    request_timeout=self.agent.defaults.request_timeout,
                    audit=self.inv.audit,
                    audit_request=self._audit_request(),
                    sleep=self.agent._sleep,
                )
            except ModelUnavailable as err:
                return await self.finish_escalation(err.reason)
            self.turns += 1
            self.tokens.add(turn.usage)
            metrics.agent_turn("anthropic", s.model, turn.usage, self._cost(turn.usage))
            await self.inv.audit(
                "model.response",
                {
                    "turn": self.turns,
                    "stop_reason": turn.stop_reason,
                    "content": turn.content,
                    "usage": turn.usage,
                    "request_id": turn.request_id,
                },
            )
            self.messages.append(
                {
                    "role": "assistant",
                    "content": turn.content or [{"type": "text", "text": "(empty reply)"}],
                }
            )
            if turn.stop_reason == "refusal":
                return await self.finish_escalation("the model declined to continue (refusal)")
            if turn.stop_reason == "model_context_window_exceeded":
                return await self.finish_escalation(
                    "the conversation outgrew the model's context window"
                )
            if not turn.tool_calls:
                nudge = MAX_TOKENS_NUDGE if turn.stop_reason == "max_tokens" else TEXT_ONLY_NUDGE
                await self.inv.audit("agent.nudge", {"turn": self.turns, "text": nudge})
                self.messages.append({"role": "user", "content": nudge})
                await self._save()
                continue
            results, final = await self._run_tools(turn)
            self.messages.append({"role": "user", "content": results})
            if final is not None:
                return await self._finish(final)
            await self._save()

    def _request(self) -> dict[str, Any]:
        s = self.settings
        return {
            "model": s.model,
            "max_tokens": s.max_tokens,
            # No temperature: API version 2026-10-21 (the SDK 2.x default) rejects every
            # sampling parameter with a 400, whatever its value. See `_start`.
            # Breakpoints: tools + system (the same for every incident), and the conversation
            # so far (the same prefix on the next turn).
            "system": [
                {"type": "text", "text": SYSTEM_PROMPT, "cache_control": {"type": "ephemeral"}},
                # The Subject's addendum comes after the rules and their cache mark: the rules
                # stay one cached prefix for every Subject.
                *([{"type": "text", "text": s.prompt_addendum}] if s.prompt_addendum else []),
            ],
            "tools": tool_definitions(),
            "messages": _with_cache_mark(self.messages),
        }

    def _audit_request(self) -> dict[str, Any]:
        """What is new since the last request: the audit log holds the whole conversation
        once, not once per turn."""
        s = self.settings
        new = self.messages[self.audited :]
        self.audited = len(self.messages)
        return {
            "turn": self.turns + 1,
            "model": s.model,
            "max_tokens": s.max_tokens,
            "messages_total": len(self.messages),
            "messages_new": new,
        }

    # -- tools ---------------------------------------------------------------------------------

    async def _run_tools(self, turn: ModelTurn) -> tuple[list[dict[str, Any]], AgentResult | None]:
        results: list[dict[str, Any]] = []
        final: AgentResult | None = None
        refused_this_turn = 0
        for call in turn.tool_calls:
            if final is not None:  # the investigation ended with an earlier call of this turn
                await self.inv.audit(
                    "tool.call",
                    {
                        "id": call.id,
                        "name": call.name,
                        "input": call.input,
                        "skipped": "after the investigation ended (resolve, escalate or a limit)",
                    },
                )
                continue
            await self.inv.audit(
                "tool.call",
                {
                    "id": call.id,
                    "name": call.name,
                    "input": call.input,
                    "input_error": call.error,
                },
            )
            output, is_error, final = await self._run_tool(call)
            metrics.tool_called(call.name if call.name in TOOL_INPUTS else "unknown", not is_error)
            text = output if isinstance(output, str) else json.dumps(output, default=str)
            text = await asyncio.to_thread(self._clean, text)
            if is_error:
                refused_this_turn += 1
                if call.name == "propose_action":
                    self.refused_proposals += 1
                else:
                    self.failed_calls += 1
                reason = self._refusal_limit(refused_this_turn)
                if reason is not None and final is None:
                    await self.inv.audit("agent.refusal_limit", {"reason": reason})
                    final = self._escalated(reason)
            await self.inv.audit(
                "tool.result",
                {
                    "id": call.id,
                    "name": call.name,
                    "is_error": is_error,
                    "content": text,
                },
            )
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call.id, "content": text}
            if is_error:
                block["is_error"] = True
            results.append(block)
        return results, final

    def _clean(self, text: str) -> str:
        """A tool result as the model may see it: bounded, redacted, clipped to the budget.
        (Bounded first: redacting costs time in proportion to the text.)"""
        budget = self.agent.defaults.tool_result_budget
        bounded = clip(text, max(16 * budget, 64 * 1024))
        return truncate(self.agent.redactor.redact_text(bounded), budget)

    def _refusal_limit(self, this_turn: int) -> str | None:
        """Why the investigation must stop for the refused or failed calls, if it must."""
        d = self.agent.defaults
        total = self.refused_proposals + self.failed_calls
        counts = (
            f"{self.refused_proposals} refused proposal(s), {self.failed_calls} "
            "refused or failed tool call(s) so far"
        )
        if this_turn >= d.max_refused_per_turn:
            return (
                f"the model made {this_turn} refused or failed tool calls in one turn (the "
                f"limit is {d.max_refused_per_turn}; {counts}); escalating rather than "
                "letting it go on trying"
            )
        if total >= d.max_refused_per_session:
            return (
                f"the model made {total} refused or failed tool calls in this investigation "
                f"(the limit is {d.max_refused_per_session}; {counts}); escalating rather "
                "than letting it go on trying"
            )
        return None

    async def _run_tool(self, call: ToolCall) -> tuple[Any, bool, AgentResult | None]:
        """(output, is_error, final result when the call ends the investigation)."""
        if call.error is not None or call.input is None:
            return f"Tool {call.name} was not run: {call.error}", True, None
        if call.name not in TOOL_INPUTS:
            return (
                f"Unknown tool {call.name!r}; the tools are: {', '.join(TOOL_INPUTS)}",
                True,
                None,
            )
        model, _ = TOOL_INPUTS[call.name]
        try:
            args = model.model_validate(call.input)
        except ValidationError as err:
            return f"Tool {call.name} was not run: invalid input: {_problems(err)}", True, None
        remaining = self._deadline() - time.monotonic()
        try:
            async with asyncio.timeout(max(remaining, 0.001)):
                return await self._dispatch(call.name, args)
        except ToolError as err:
            return f"Tool {call.name} refused: {err}", True, None
        except TimeoutError:
            return f"Tool {call.name} did not finish within the time budget", True, None
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a broken tool is the model's information, not a crash
            return f"Tool {call.name} failed: {type(err).__name__}: {err}", True, None

    async def _dispatch(self, name: str, args: BaseModel) -> tuple[Any, bool, AgentResult | None]:
        tools = self.inv.tools
        match args:
            case PromqlRangeInput():
                return (
                    await tools.promql_range(args.query, args.minutes, args.step_seconds),
                    False,
                    None,
                )
            case PromqlInput():
                return await tools.promql(args.query), False, None
            case K8sGetInput():
                return await tools.k8s_get(args.kind, args.name), False, None
            case PodLogsInput():
                return await tools.pod_logs(args.pod, args.tail), False, None
            case KubectlInput():
                return await tools.kubectl(list(args.argv)), False, None
            case ProposeInput():
                return await self._propose(args)
            case ResolveInput():
                return "Resolved.", False, self._resolved(args)
            case EscalateInput():
                return "Escalated.", False, self._escalated(args.reason, args.summary)
        no_input = {
            "observe_subject": tools.observe,
            "k8s_events": tools.k8s_events,
            "list_actions": tools.list_actions,
        }
        return await no_input[name](), False, None

    # -- proposing a step ----------------------------------------------------------------------

    async def _propose(self, args: ProposeInput) -> tuple[Any, bool, None]:
        problems = self._local_problems(args.action, args.params)
        checked_by = "agent"
        if problems:
            verdict = _Decision(decision=Verdict.REFUSED, reason="; ".join(problems))
        else:
            checked_by = "gate"
            try:
                raw = await self.inv.tools.check_action(args.action, dict(args.params))
                verdict = _Decision.model_validate(raw)
            except ToolError as err:
                verdict = _Decision(decision=Verdict.REFUSED, reason=str(err))
            except ValidationError:
                verdict = _Decision(
                    decision=Verdict.REFUSED, reason="the policy gate's answer could not be read"
                )
        added = verdict.decision != Verdict.REFUSED
        if added:
            self.plan.append(
                PlanStep(action=args.action, params=dict(args.params), rationale=args.rationale)
            )
        await self.inv.audit(
            "policy.decision",
            {
                "action": args.action,
                "params": args.params,
                "rationale": args.rationale,
                "decision": verdict.decision,
                "reason": verdict.reason,
                "checked_by": checked_by,
                "added_to_plan": added,
                "plan_length": len(self.plan),
            },
        )
        if not added:
            refused = {"added": False, "decision": Verdict.REFUSED, "reason": verdict.reason}
            return refused, True, None
        return (
            {
                "added": True,
                "step": len(self.plan),
                "decision": verdict.decision,
                "reason": verdict.reason,
            },
            False,
            None,
        )

    def _local_problems(self, action: str, params: dict[str, Any]) -> list[str]:
        """Defence in depth before the gate is even asked: a known action, its exact
        parameters, a bounded plan, and kubectl commands that name single objects."""
        if len(self.plan) >= self.agent.defaults.max_plan_steps:
            return [f"the plan already has {len(self.plan)} steps, the most it may have"]
        step = PlanStep(action=action, params=params)
        for n, existing in enumerate(self.plan, start=1):
            if (existing.action, existing.params) == (step.action, step.params):
                return [f"this exact step is already in the plan (step {n})"]
        spec = find_action(self.inv.plugin, action)
        if spec is None:
            known = action_names(self.inv.plugin)
            return [f"unknown action {action!r} (known: {', '.join(known)})"]
        try:
            validate_params(spec, params)  # a core action's own checks too (kubectl's allowlist)
        except ValueError as err:
            return [str(err)]
        return []

    # -- endings -------------------------------------------------------------------------------

    def _cost(self, usage: dict[str, int]) -> float:
        """What one turn's tokens cost (0 for a model without a known price)."""
        turn = TokenCounts()
        turn.add(usage)
        return cost_usd(self.settings.model, prices=self.agent.prices, **turn.model_dump())[0]

    def _usage(self) -> tuple[Usage, str | None]:
        t = self.tokens
        cost, note = cost_usd(
            self.settings.model,
            input_tokens=t.input_tokens,
            output_tokens=t.output_tokens,
            cache_read_tokens=t.cache_read_tokens,
            cache_write_tokens=t.cache_write_tokens,
            prices=self.agent.prices,
        )
        usage = Usage(
            backend="anthropic",
            model=self.settings.model,
            turns=self.turns,
            input_tokens=t.input_tokens,
            output_tokens=t.output_tokens,
            cache_read_tokens=t.cache_read_tokens,
            cache_write_tokens=t.cache_write_tokens,
            cost_usd=cost,
        )
        return usage, note

    def _resolved(self, args: ResolveInput) -> AgentResult:
        return AgentResult(
            outcome="plan",
            diagnosis=DiagnosisResult(
                summary=args.summary,
                root_cause=args.root_cause,
                confidence=args.confidence,
                alternatives=list(args.alternatives),
            ),
            steps=list(self.plan),
            usage=self._usage()[0],
        )

    def _escalated(self, reason: str, summary: str | None = None) -> AgentResult:
        return AgentResult(
            outcome="escalate",
            diagnosis=DiagnosisResult(summary=summary or f"Escalated: {reason}"),
            escalation_reason=reason,
            usage=self._usage()[0],
        )

    async def finish_escalation(self, reason: str) -> AgentResult:
        return await self._finish(self._escalated(reason))

    async def _finish(self, result: AgentResult) -> AgentResult:
        usage, note = self._usage()
        result = result.model_copy(update={"usage": usage})
        await self.inv.audit(
            "agent.end",
            {
                "outcome": result.outcome,
                "escalation_reason": result.escalation_reason,
                "steps": [s.model_dump() for s in result.steps],
                "usage": usage.model_dump(),
                **({"cost_note": note} if note else {}),
            },
        )
        with contextlib.suppress(Exception):
            await self.inv.checkpoint.clear()
        return result


def _with_cache_mark(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of the conversation with a cache breakpoint on its last block; the stored
    history keeps none (the API allows four breakpoints per request)."""
    out = list(messages)
    last = dict(out[-1])
    content = last["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    blocks[-1] = {**blocks[-1], "cache_control": {"type": "ephemeral"}}
    last["content"] = blocks
    out[-1] = last
    return out


def _problems(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in err.errors())
