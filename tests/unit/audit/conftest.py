"""A log with one record of every kind the incident loop writes, for the audit tests."""

from pathlib import Path
from typing import Any

import pytest

from aiops.audit import AuditLog, AuditRecord

NAMESPACE = "shop"
NAME = "inc-7"


def write_sample(log: AuditLog, namespace: str = NAMESPACE, name: str = NAME) -> list[AuditRecord]:
    """Nine records, with the text a real incident has: escapes, non-ASCII, nesting, floats."""
    entries: list[tuple[str, dict[str, Any]]] = [
        ("phase", {"from": "Open", "to": "Investigating", "message": "agent started"}),
        (
            "model.request",
            {"model": "claude-x", "max_tokens": 1024, "messages": [{"role": "user"}]},
        ),
        ("model.response", {"text": "Store 4 is Down; évicting leaders first.", "usage": 0.25}),
        ("tool.call", {"tool": "pd.stores", "args": {"state": ["Up", "Down"]}}),
        ("tool.result", {"output": "\x1b[31mERROR\x1b[0m store 4\ttimeout\n\u2603 done"}),
        ("policy.decision", {"action": "evict_leader", "verdict": "run", "risk": "low"}),
        ("approval", {"approval": "ap-1", "by": "alice", "approved": ["a0"]}),
        ("action.started", {"id": "a0", "action": "evict_leader", "params": {"store": 4}}),
        ("action.finished", {"id": "a0", "ok": True, "result": None}),
    ]
    return [log.append(namespace, name, kind, data) for kind, data in entries]


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit")


@pytest.fixture
def sample(log: AuditLog) -> Path:
    write_sample(log)
    return log.path(NAMESPACE, NAME)
