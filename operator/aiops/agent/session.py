"""What an agent session saves after every completed turn, so that the next operator resumes
the conversation (after a SIGTERM or a crash) instead of starting over."""

from __future__ import annotations

import copy
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiops.agent.base import PlanStep
from aiops.redact import Redactor, truncate

CLIPPED_RESULT = 400


class TokenCounts(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def add(self, turn: dict[str, int]) -> None:
        self.input_tokens += turn.get("input_tokens", 0)
        self.output_tokens += turn.get("output_tokens", 0)
        self.cache_read_tokens += turn.get("cache_read_tokens", 0)
        self.cache_write_tokens += turn.get("cache_write_tokens", 0)


class SavedSession(BaseModel):
    """The checkpoint's shape. A conversation always ends with a user message here (a turn is
    saved once its tool results are in), so the next request can be sent as it is."""

    model_config = ConfigDict(extra="ignore")

    version: Literal[1] = 1
    messages: list[dict[str, Any]] = Field(min_length=1)
    plan: list[PlanStep] = []
    usage: TokenCounts = Field(default_factory=TokenCounts)
    turns: int = Field(default=0, ge=0)
    elapsed_s: float = Field(default=0.0, ge=0)
    model: str | None = None
    # Refused or failed tool calls so far: the limits hold across a restart.
    refused_proposals: int = Field(default=0, ge=0)
    failed_calls: int = Field(default=0, ge=0)

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if any(m.get("role") not in ("user", "assistant") for m in messages):
            raise ValueError("every message needs role user or assistant")
        if messages[-1].get("role") != "user":
            raise ValueError("a saved conversation ends with a user message")
        return messages


def compact(messages: list[dict[str, Any]], budget: int) -> tuple[list[dict[str, Any]], int]:
    """The conversation, fitted to `budget` characters of JSON for the checkpoint by clipping
    the oldest tool results first (the last exchange stays whole). A checkpoint lives in the
    API server, where an object is at most about 1 MiB; a resumed model re-reads what it
    needs. Returns the messages and how many results were clipped."""
    size = len(json.dumps(messages))
    if size <= budget:
        return messages, 0
    out = copy.deepcopy(messages)
    clipped = 0
    for message in out[:-2]:
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for block in content:
            text = block.get("content") if block.get("type") == "tool_result" else None
            if isinstance(text, str) and len(text) > CLIPPED_RESULT:
                block["content"] = truncate(text, CLIPPED_RESULT)
                size -= len(text) - len(block["content"])
                clipped += 1
                if size <= budget:
                    return out, clipped
    return out, clipped


def masked(messages: list[dict[str, Any]], redactor: Redactor) -> list[dict[str, Any]]:
    """The conversation as a checkpoint keeps it: the model's own words (its text, its tool
    calls' input) through the redactor, as everything else it saw already was. A thinking block
    stays as it is: it is signed, and the API refuses one that was altered (and the model
    thought only about what reached it redacted)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if message.get("role") != "assistant" or not isinstance(content, list):
            out.append(message)
            continue
        blocks: list[Any] = []
        for block in content:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text" and isinstance(block.get("text"), str):
                block = {**block, "text": redactor.redact_text(block["text"])}
            elif kind == "tool_use":
                block = {**block, "input": redactor.redact(block.get("input"))}
            blocks.append(block)
        out.append({**message, "content": blocks})
    return out
