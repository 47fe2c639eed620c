"""One audit record, its one canonical line, and the hashes that chain the lines.

A record's line is the canonical JSON of all its fields (keys sorted, no spaces, UTF-8),
and nothing else. `hash` covers every other field; `prev` is the sha256 of the previous
line's bytes. Because a line must be exactly the canonical form of what it parses to, a
changed byte anywhere is caught on its own line, even where JSON would read it the same
(`\\u001b` and `\\u001B` are one character, but only one of them is canonical).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError, field_serializer

ZERO_HASH = "0" * 64
FIELDS = ("data", "hash", "incident", "kind", "prev", "seq", "time")

# Kubernetes names (DNS subdomains) and namespaces (DNS labels) both fit this; it also keeps
# a path built from them inside the log's root ("..", "/" and "" never match).
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_KIND = re.compile(r"^[a-z][a-z0-9_.\-]{0,62}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class AuditError(ValueError):
    """An audit log, a line of one, or an argument to one is not what it must be."""


class AuditUnwritable(OSError):
    """The audit log could not be written (its disk full or read-only, its directory gone):
    whatever was to be recorded must not happen unrecorded."""


def check_name(what: str, value: str) -> str:
    if not _NAME.match(value):
        raise AuditError(f"{what} {value!r} is not a Kubernetes name")
    return value


def check_kind(kind: str) -> str:
    if not _KIND.match(kind):
        raise AuditError(f"record kind {kind!r} must be lowercase words joined by . _ or -")
    return kind


def canonical(value: Any) -> bytes:
    """The one byte form of a JSON value that hashes and lines are made of."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def format_time(value: datetime) -> str:
    # Always UTC, always microseconds, always "Z": one spelling per instant.
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class AuditRecord(BaseModel):
    """One line of a per-incident audit log."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    time: AwareDatetime
    incident: str
    kind: str
    data: dict[str, Any]
    prev: str
    hash: str

    @field_serializer("time")
    def _time(self, value: datetime) -> str:
        return format_time(value)

    def body(self) -> dict[str, Any]:
        """Every field but `hash`, as the JSON the hash is taken over."""
        return self.model_dump(mode="json", exclude={"hash"})

    def computed_hash(self) -> str:
        return sha256(canonical(self.body()))

    def line(self) -> bytes:
        """The record as stored, without the newline."""
        return canonical(self.model_dump(mode="json"))

    @classmethod
    def seal(
        cls, *, seq: int, time: datetime, incident: str, kind: str, data: dict[str, Any], prev: str
    ) -> AuditRecord:
        """A record with its hash filled in."""
        unsealed = cls(
            seq=seq, time=time, incident=incident, kind=kind, data=data, prev=prev, hash=""
        )
        return unsealed.model_copy(update={"hash": unsealed.computed_hash()})


def parse_line(line: bytes) -> AuditRecord:
    """The record a line (without its newline) holds, or AuditError saying why it holds none.

    Checks the line's own integrity (canonical form and hash); the chain (seq, prev) needs
    its neighbours and is checked by `verify`.
    """
    try:
        raw = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise AuditError(f"not UTF-8 at byte {err.start}") from err
    except json.JSONDecodeError as err:
        raise AuditError(f"not JSON ({err.msg} at column {err.colno})") from err
    if not isinstance(raw, dict) or sorted(raw) != list(FIELDS):
        shown = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise AuditError(f"not a record (fields {shown}, expected {list(FIELDS)})")
    try:
        record = AuditRecord.model_validate(raw, strict=False)
    except ValidationError as err:
        first = err.errors()[0]
        raise AuditError(f"not a record ({first['loc']}: {first['msg']})") from err
    if not (_HEX64.match(record.hash) and _HEX64.match(record.prev)):
        raise AuditError("not a record (hash and prev must be 64 lowercase hex digits)")
    # Before the canonical check, so that an edited field reads as the hash mismatch it is.
    computed = record.computed_hash()
    if computed != record.hash:
        raise AuditError(f"hash mismatch (stored {record.hash[:12]}…, computed {computed[:12]}…)")
    if record.line() != line:
        raise AuditError("not in canonical form (edited after it was written)")
    return record
