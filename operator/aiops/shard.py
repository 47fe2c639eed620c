"""Sharding: Subjects spread over several operator processes, each owning a fixed part.

kopf's peering makes replicas active/standby: one process does all the work. When one process
is not enough, `AIOPS_SHARD=i/n` makes this one own only the Subjects whose
`sha256(namespace/name)` is `i` modulo `n`, and with each Subject its Incidents and its Chaos
(by their `spec.subject`), so everything about one Subject happens in one process: its
cooldown and blast-radius lock (`Runtime.subject_lock`) stays a process-local lock, and an
Incident is never driven by two processes. The hash needs no coordination and no object
changes; it moves a Subject to another shard only when `n` changes (then restart every shard
with the new `n`, so no Subject has two owners).

The kopf filters here (`when=`) read the shard from the operator's settings in kopf's memo;
each process sees every object (its watch is the namespace's) but runs handlers and daemons
only for what it owns.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

_SPEC = re.compile(r"([0-9]{1,4})/([0-9]{1,4})")


class Shard(BaseModel):
    """This process's part: shard `index` of `count` (0-based)."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0)
    count: int = Field(ge=1, le=1024)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        m = _SPEC.fullmatch(value.strip())
        if m is None:
            raise ValueError("not a shard like 0/2 (this one's index / how many, from 0)")
        index, count = int(m[1]), int(m[2])
        if not 1 <= count <= 1024:
            raise ValueError(f"{count} shards: there must be 1 to 1024")
        return {"index": index, "count": count}

    @model_validator(mode="after")
    def _index_in_range(self) -> Shard:
        if self.index >= self.count:
            raise ValueError(
                f"shard index {self.index} out of range: 0..{self.count - 1} of {self.count}"
            )
        return self

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, namespace: str | None, subject: str | None) -> bool:
        return shard_of(namespace or "", subject or "", self.count) == self.index


def shard_of(namespace: str, subject: str, count: int) -> int:
    """The shard that owns Subject `namespace/subject` of `count` (stable across processes,
    machines and Python versions: not `hash()`, which is salted per process)."""
    digest = hashlib.sha256(f"{namespace}/{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def _shard(memo: Any) -> Shard | None:
    settings = getattr(memo, "settings", None)
    return getattr(settings, "shard", None)


def owns_subject(name: str, namespace: str | None, memo: Any, **_: Any) -> bool:
    """kopf filter of Subjects: this process owns it (every one, unsharded)."""
    shard = _shard(memo)
    return shard is None or shard.owns(namespace, name)


def owns_subject_of(spec: Any, namespace: str | None, memo: Any, **_: Any) -> bool:
    """kopf filter of Incidents and Chaos: this process owns the Subject they name."""
    shard = _shard(memo)
    return shard is None or shard.owns(namespace, (spec or {}).get("subject"))
