"""Node settings, read from `RL_*` environment variables into a validated pydantic model.

Plain pydantic (no pydantic-settings): the environment is a boundary like any other, so a bad
value stops the node at start with a message naming the variable, not later with a traceback.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# Bounds shared by the HTTP models, the admin API and the settings: one place to change them.
MAX_KEY_BYTES = 256
MIN_LIMIT = 1
MAX_LIMIT = 1_000_000_000
MIN_WINDOW_MS = 1
MAX_WINDOW_MS = 86_400_000  # one day: a longer sliding log is a storage system, not a limiter

Limit = Annotated[int, Field(ge=MIN_LIMIT, le=MAX_LIMIT)]
WindowMs = Annotated[int, Field(ge=MIN_WINDOW_MS, le=MAX_WINDOW_MS)]

ENV_PREFIX = "RL_"


class SettingsError(ValueError):
    """A setting from the environment is invalid; the message names the variable."""


class Settings(BaseModel):
    """Everything one rate limiter node needs to know. Field `x` is read from `RL_X`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node_id: str = Field(default="", max_length=128, pattern=r"^[A-Za-z0-9_.:-]*$")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # The URL other parties (the operator, peers' admin views) use to reach this node.
    advertise_url: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Every Redis key this service writes starts with this, so several limiters can share a
    # Redis and an operator can find our keys by prefix.
    key_prefix: str = Field(default="rl", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    default_limit: Limit = 100
    default_window_ms: WindowMs = 1000
    heartbeat_interval_s: float = Field(default=1.0, gt=0, le=60)
    node_ttl_s: float = Field(default=5.0, gt=0, le=600)
    # Socket timeout for Redis calls: a check that cannot reach Redis answers 503 within this.
    redis_timeout_ms: int = Field(default=500, ge=10, le=60_000)
    redis_max_connections: int = Field(default=64, ge=1, le=10_000)
    max_body_bytes: int = Field(default=4096, ge=512, le=1_048_576)
    log_level: str = Field(default="info", pattern=r"^(critical|error|warning|info|debug)$")

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        # Frozen model: derived defaults are filled through object.__setattr__ once, here.
        if not self.node_id:
            object.__setattr__(self, "node_id", f"{socket.gethostname()}-{self.port}")
        if not self.advertise_url:
            object.__setattr__(self, "advertise_url", f"http://{self.host}:{self.port}")
        if self.node_ttl_s <= self.heartbeat_interval_s:
            raise ValueError(
                f"node_ttl_s ({self.node_ttl_s}) must exceed heartbeat_interval_s "
                f"({self.heartbeat_interval_s}), or a live node would flap to Down"
            )
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read `RL_*` variables; raise SettingsError with the variable names on bad input."""
        env = os.environ if env is None else env
        values = {
            name: env[ENV_PREFIX + name.upper()]
            for name in cls.model_fields
            if ENV_PREFIX + name.upper() in env
        }
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                if e["loc"]
                else e["msg"]
                for e in exc.errors()
            )
            raise SettingsError(problems) from None
