"""One model turn over the Messages API: a streamed request, read event by event, retried
with backoff on the failures that pass (429, 5xx, 529 overloaded, timeouts, dropped
connections, a stream cut before `message_stop`), then given up with a precise reason.

The stream is read from the raw events (`messages.create(stream=True)`) rather than through the
SDK's accumulating helper: the helper parses tool input leniently (a truncated JSON object
becomes a shorter valid one, which could turn a cut `["delete", "pod", "a"` into a different
command) and fails the whole turn on invalid JSON. Here each tool call's input is parsed
strictly when its block ends, and a bad one goes back to the model as an error.

The SDK's own retries are off (`max_retries=0`) so that every attempt is audited here.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic

AuditFn = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` in all (the first included); delays grow from `base_delay`, doubled each
    time, capped at `max_delay`, with +-`jitter` (a fraction) so that many operators hit by
    the same outage do not retry in step. A server's retry-after wins, within `max_delay`."""

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.25

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        base = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
        return max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter)))


@dataclass
class ToolCall:
    id: str
    name: str
    input: dict[str, Any] | None  # None: `error` says why it could not be read
    error: str | None = None


@dataclass
class ModelTurn:
    content: list[dict[str, Any]]  # the assistant message, as sent back in the history
    tool_calls: list[ToolCall]
    stop_reason: str | None
    usage: dict[str, int]
    request_id: str | None = None


@dataclass
class Failure:
    """Why one attempt failed: `label` goes into the escalation reason."""

    label: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    detail: str = ""


class ModelUnavailable(Exception):
    """The model could not be reached within the retries or the time budget."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _StreamCut(Exception):
    pass


# -- reading one streamed answer ------------------------------------------------------------


@dataclass
class _Block:
    type: str
    text: str = ""  # text, or a thinking block's thinking
    id: str = ""
    name: str = ""
    raw: list[str] = field(default_factory=list)  # tool input JSON, as streamed
    signature: str = ""
    opaque: dict[str, Any] | None = None  # a block kept as it came (redacted_thinking, ...)


def _usage(source: Any, into: dict[str, int]) -> None:
    for ours, theirs in (
        ("input_tokens", "input_tokens"),
        ("output_tokens", "output_tokens"),
        ("cache_read_tokens", "cache_read_input_tokens"),
        ("cache_write_tokens", "cache_creation_input_tokens"),
    ):
        value = getattr(source, theirs, None)
        if isinstance(value, int):
            into[ours] = value  # the API's counts are running totals


def _parse_input(raw: str) -> tuple[dict[str, Any] | None, str | None]:
    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except ValueError as err:
        excerpt = raw if len(raw) <= 300 else raw[:300] + "..."
        return None, f"the input was not valid JSON ({err}): {excerpt}"
    if not isinstance(value, dict):
        return None, f"the input must be a JSON object, not {type(value).__name__}"
    return value, None


async def stream_turn(
    client: anthropic.AsyncAnthropic, request: dict[str, Any], read_timeout: float
) -> ModelTurn:
    """One attempt. `read_timeout` is the SDK's (per read); the caller bounds the whole.
    Raises the SDK's errors, transport errors, or `_StreamCut`."""
    blocks: dict[int, _Block] = {}
    usage: dict[str, int] = {}
    stop_reason: str | None = None
    finished = False
    stream = await client.messages.create(**request, stream=True, timeout=read_timeout)
    request_id = getattr(getattr(stream, "response", None), "headers", {}).get("request-id")
    async with stream:
        async for event in stream:
            kind = event.type
            if kind == "message_start":
                _usage(event.message.usage, usage)
            elif kind == "content_block_start":
                cb = event.content_block
                if cb.type == "tool_use":
                    blocks[event.index] = _Block("tool_use", id=cb.id, name=cb.name)
                elif cb.type == "text":
                    blocks[event.index] = _Block("text", text=cb.text)
                elif cb.type == "thinking":
                    # Models that think between tool calls need their thinking back, signed
                    # and unchanged, in the next request.
                    blocks[event.index] = _Block(
                        "thinking", text=cb.thinking, signature=cb.signature
                    )
                else:  # redacted_thinking and the like: opaque, passed back as they came
                    blocks[event.index] = _Block(cb.type, opaque=cb.to_dict())
            elif kind == "content_block_delta":
                block = blocks.get(event.index)
                delta = event.delta
                if block is None:
                    continue
                if delta.type == "text_delta":
                    block.text += delta.text
                elif delta.type == "input_json_delta":
                    block.raw.append(delta.partial_json)
                elif delta.type == "thinking_delta":
                    block.text += delta.thinking
                elif delta.type == "signature_delta":
                    block.signature += delta.signature
            elif kind == "message_delta":
                stop_reason = event.delta.stop_reason
                _usage(event.usage, usage)
            elif kind == "message_stop":
                finished = True
    if not finished:
        raise _StreamCut("the stream ended before message_stop")
    return _assemble(blocks, stop_reason, usage, request_id)


def _assemble(
    blocks: dict[int, _Block],
    stop_reason: str | None,
    usage: dict[str, int],
    request_id: str | None,
) -> ModelTurn:
    content: list[dict[str, Any]] = []
    calls: list[ToolCall] = []
    for _, block in sorted(blocks.items()):
        if block.type == "text" and block.text:
            content.append({"type": "text", "text": block.text})
        elif block.type == "thinking":
            content.append(
                {"type": "thinking", "thinking": block.text, "signature": block.signature}
            )
        elif block.opaque is not None:
            content.append(block.opaque)
        elif block.type == "tool_use":
            value, error = _parse_input("".join(block.raw))
            if error and stop_reason == "max_tokens":
                error += " (your reply was cut at the output token limit)"
            calls.append(ToolCall(block.id, block.name, value, error))
            # The history must hold an object; an unreadable input is kept as an empty one,
            # and the tool result tells the model what was wrong with what it sent.
            content.append(
                {"type": "tool_use", "id": block.id, "name": block.name, "input": value or {}}
            )
    return ModelTurn(content, calls, stop_reason, usage, request_id)


# -- failures and retries --------------------------------------------------------------------


_STATUS_LABELS = {
    429: "rate limited (429)",
    500: "server error (500)",
    502: "bad gateway (502)",
    503: "unavailable (503)",
    504: "gateway timeout (504)",
    408: "request timeout (408)",
    529: "overloaded (529)",
}


def _retry_after(err: anthropic.APIStatusError) -> float | None:
    headers = err.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) * scale
            except ValueError:
                return None
    return None


def classify(err: BaseException) -> Failure:
    """What an attempt's exception means: retry or give up, and how to say it."""
    if isinstance(err, anthropic.APIStatusError):
        status = err.status_code
        if err.type == "overloaded_error" or status == 529:
            # An overload can also arrive as an SSE error event inside a 200 response.
            return Failure("overloaded (529)", True, 529, _retry_after(err))
        if status in _STATUS_LABELS or status >= 500:
            label = _STATUS_LABELS.get(status, f"server error ({status})")
            return Failure(label, True, status, _retry_after(err))
        if status == 200:  # another error event inside a stream
            return Failure(f"stream error ({err.type or 'unknown'})", True, status)
        detail = err.api_message or str(err)
        return Failure(
            f"rejected the request ({status} {err.type or 'error'}: {detail[:300]})",
            False,
            status,
        )
    if isinstance(err, anthropic.APITimeoutError):
        return Failure("timed out", True)
    if isinstance(err, anthropic.APIConnectionError):
        return Failure("unreachable (connection error)", True)
    if isinstance(err, _StreamCut):
        return Failure("stream cut before the message was complete", True)
    detail = f"{type(err).__name__}: {str(err)[:300]}"
    if _is_transport(err):
        # Raised while reading the body (peer closed the connection, incomplete chunked
        # read, a read timeout between events, bad SSE data); the SDK does not wrap these.
        if "timeout" in type(err).__name__.lower():
            return Failure("timed out", True, detail=detail)
        return Failure("stream cut before the message was complete", True, detail=detail)
    # Anything else is a bug on our side (a wrong argument, say): retrying cannot help.
    return Failure(f"call failed ({detail})", False, detail=detail)


_TRANSPORT_MODULES = frozenset({"httpx", "httpx2", "httpcore", "h11", "h2", "anyio", "ssl"})


def _is_transport(err: BaseException) -> bool:
    """Errors of the HTTP stack under the SDK, matched by module so that this code does not
    import the SDK's private transport (it has changed before: httpx, then httpx2)."""
    if isinstance(err, OSError | EOFError | json.JSONDecodeError):
        return True
    return type(err).__module__.split(".", 1)[0] in _TRANSPORT_MODULES


async def call_with_retries(
    client: anthropic.AsyncAnthropic,
    request: dict[str, Any],
    *,
    policy: RetryPolicy,
    deadline: float,
    request_timeout: float,
    audit: AuditFn,
    audit_request: dict[str, Any],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> ModelTurn:
    """A turn, or `ModelUnavailable` with the reason. `deadline` is on `time.monotonic()`."""
    last: Failure | None = None
    for attempt in range(1, policy.attempts + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ModelUnavailable(_out_of_time(last, attempt - 1))
        await audit("model.request", {**audit_request, "attempt": attempt})
        try:
            async with asyncio.timeout(remaining) as budget:
                turn = await stream_turn(client, request, min(request_timeout, remaining))
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as err:  # each failure is classified: retried, or said and escalated
            if isinstance(err, TimeoutError) and budget.expired():
                raise ModelUnavailable(_out_of_time(last, attempt)) from err
            last = classify(err)
        else:
            return turn
        wait = policy.delay(attempt, last.retry_after) if last.retryable else None
        more = last.retryable and attempt < policy.attempts
        await audit(
            "model.error",
            {
                "attempt": attempt,
                "error": last.label,
                "status": last.status,
                "detail": last.detail,
                "retry_in_s": round(wait, 3) if more and wait else None,
            },
        )
        if not last.retryable:
            raise ModelUnavailable(f"Anthropic API {last.label}")
        if not more:
            break
        assert wait is not None
        if time.monotonic() + wait >= deadline:
            raise ModelUnavailable(
                f"Anthropic API {last.label} after {attempt} attempt{'s' * (attempt > 1)}; "
                "the time budget leaves no room for another"
            )
        await sleep(wait)
    assert last is not None
    raise ModelUnavailable(f"Anthropic API {last.label} after {policy.attempts} attempts")


def _out_of_time(last: Failure | None, attempts: int) -> str:
    tail = f" (last error after {attempts} attempts: {last.label})" if last else ""
    return f"time budget exhausted waiting for the Anthropic API{tail}"
