"""The parameters of a delay fault, latency ± jitter, shared by the executors that add one
(a toxiproxy latency toxic, a netem qdisc): both draw each delay from latency ± jitter and
cannot go below zero, so jitter over latency is refused rather than silently clipped."""

from __future__ import annotations

from pydantic import Field, model_validator

from aiops.subjects.contract import Frozen


class DelayParams(Frozen):
    latency_ms: int = Field(default=100, ge=1, le=60_000, description="Delay added, in ms.")
    jitter_ms: int = Field(
        default=0, ge=0, le=60_000, description="Each delay is latency_ms ± up to this, in ms."
    )

    @model_validator(mode="after")
    def _jitter_within_latency(self) -> DelayParams:
        if self.jitter_ms > self.latency_ms:
            raise ValueError(
                f"jitter_ms ({self.jitter_ms}) must not exceed latency_ms "
                f"({self.latency_ms}): a delay cannot go below zero"
            )
        return self
