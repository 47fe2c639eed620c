"""Where one local system lives: its name, ports, namespace and files, and the record `up`
writes so that `down`, `status` and `aiops demo` find what `up` started.

Ports: the control plane takes 6 from `cluster_port` (aiops.cluster), the rate limiter stack
10 from `stack_port` (ratelimiter.localstack), and the operator's health endpoint the one
right after the stack's span. State lives under `<state dir>/systems/<name>/`; the cluster
keeps its own under `<state dir>/clusters/<name>/`, as `aiops cluster` does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aiops.cluster.local import DEFAULT_NAME, DEFAULT_PORT, default_state_dir

DEFAULT_STACK_PORT = 24100
"""The rate limiter's base port; examples/subject.yaml points at it."""
DEFAULT_NAMESPACE = "demo"
SUBJECT = "ratelimiter"
RECORD = "system.json"


class LocalSystemError(Exception):
    """A failure of `aiops up | down | status` the user can act on: one line with the fix."""


class Layout(BaseModel):
    """One local system: what `up` is asked to bring up, and where its files go."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = DEFAULT_NAME
    cluster_port: int = Field(default=DEFAULT_PORT, ge=1024, le=65529)
    # The stack's span (10 ports) and the operator's one after it fit below 65536.
    stack_port: int = Field(default=DEFAULT_STACK_PORT, ge=1024, le=65524)
    namespace: str = DEFAULT_NAMESPACE
    state_dir: Path = Field(default_factory=default_state_dir)

    @property
    def directory(self) -> Path:
        return self.state_dir / "systems" / self.name

    @property
    def stack_dir(self) -> Path:
        return self.directory / "stack"

    @property
    def audit_dir(self) -> Path:
        return self.directory / "audit"

    @property
    def operator_log(self) -> Path:
        return self.directory / "operator.log"

    @property
    def record_path(self) -> Path:
        return self.directory / RECORD

    @property
    def operator_port(self) -> int:
        """The operator's liveness endpoint: the first port after the stack's span."""
        # Imported here: the stack's package brings psutil, which the CLI loads only to act.
        from ratelimiter.localstack.ports import PORT_SPAN

        return self.stack_port + PORT_SPAN

    @property
    def operator_health_url(self) -> str:
        return f"http://127.0.0.1:{self.operator_port}/healthz"


class OperatorRecord(BaseModel):
    pid: int
    started: float = Field(description="The process's start time (/proc), against pid reuse.")
    agent: str = Field(
        default="runbook",
        description="anthropic when ANTHROPIC_API_KEY was "
        "set for the operator (it investigates with Claude), else runbook.",
    )


class Record(BaseModel):
    """What `up` started, saved as system.json; `down` stops exactly this."""

    layout: Layout
    kubeconfig: Path
    operator: OperatorRecord | None = None

    def save(self) -> None:
        path = self.layout.record_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=2) + "\n")
        os.replace(tmp, path)


def load_record(name: str = DEFAULT_NAME, state_dir: Path | None = None) -> Record | None:
    """The record of system `name`, or None when `up` never ran (or `down` removed it)."""
    path = Layout(name=name, state_dir=state_dir or default_state_dir()).record_path
    try:
        return Record.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, ValidationError) as err:
        raise LocalSystemError(
            f"{path} is unreadable ({err}): remove it, or run 'aiops down'"
        ) from err
