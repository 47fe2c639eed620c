"""The per-incident audit log: append-only JSON Lines, hash-chained, fsynced, redacted.

One file per incident, `root/<namespace>/<name>.jsonl`. Appends hold an exclusive `flock`
on the file from reading the tail to the fsync of the new line, so two operator processes
(the old and the new one during a rollout) take turns and never fork the chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiops import metrics
from aiops.audit.files import (
    FILE_MODE,
    fsync_dir,
    last_newline,
    make_dirs,
    read_lines,
    write_all,
)
from aiops.audit.record import (
    ZERO_HASH,
    AuditError,
    AuditRecord,
    AuditUnwritable,
    canonical,
    check_kind,
    check_name,
    parse_line,
    sha256,
)
from aiops.redact import Redactor, truncate

MAX_RECORD_BYTES = 256 * 1024
"""The most a record's `data` may take as canonical JSON; more is clipped (see `bound`)."""
TRUNCATED = "_truncated"
"""The key `bound` adds to data it clipped: the original size and the limit, in bytes."""


def log_path(root: Path, namespace: str, name: str) -> Path:
    """root/<namespace>/<name>.jsonl; AuditError unless both are Kubernetes names."""
    return root / check_name("namespace", namespace) / f"{check_name('name', name)}.jsonl"


def bound(data: dict[str, Any], limit: int = MAX_RECORD_BYTES) -> dict[str, Any]:
    """`data` if its canonical JSON fits in `limit` bytes; else a copy whose long strings are
    cut (head and tail kept, the cut counted) until it fits, marked with TRUNCATED. Data that
    is large for another reason (a list of a million numbers) becomes a preview of its JSON.
    """
    size = len(canonical(data))
    if size <= limit:
        return data
    marker = {TRUNCATED: {"bytes": size, "limit": limit}}
    budget = _longest_string(data)
    while budget > 256:
        budget //= 2
        clipped = {**_clip(data, budget), **marker}
        if len(canonical(clipped)) <= limit:
            return clipped
    text = canonical(data).decode("utf-8")
    for share in (2, 4):
        preview = {**marker, "preview": truncate(text, limit // share)}
        if len(canonical(preview)) <= limit:
            return preview
    # A character takes at most 6 bytes once escaped in JSON: an eighth always fits.
    return {**marker, "preview": truncate(text, limit // 8)}


def _longest_string(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return max((_longest_string(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return max((_longest_string(v) for v in value), default=0)
    return 0


def _clip(value: Any, budget: int) -> Any:
    if isinstance(value, str):
        return truncate(value, budget)
    if isinstance(value, dict):
        return {k: _clip(v, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip(v, budget) for v in value]
    return value


def _snapshot(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_snapshot(v) for v in value]
    return value


@dataclass(frozen=True)
class _Tail:
    """What an append needs from the end of the log."""

    prev: str  # sha256 of the last complete line
    seq: int  # the next record's seq
    end: int  # offset just past the last newline
    torn: bytes  # what follows the last newline: a write that never finished
    unreadable: str | None  # why the last complete line holds no record, if it does not


class AuditLog:
    """Append-only, hash-chained audit logs under one root directory, one per incident."""

    def __init__(self, root: Path, redactor: Redactor | None = None) -> None:
        self.root = Path(root)
        # Without the operator's own Redactor, registered secrets would not be masked; the
        # default still masks by key name and by shape.
        self.redactor = redactor or Redactor()
        make_dirs(self.root)

    def path(self, namespace: str, name: str) -> Path:
        return log_path(self.root, namespace, name)

    def prepare(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The data a record will hold: redacted (a deep copy), then bounded."""
        if not isinstance(data, Mapping):
            raise AuditError(f"record data must be a mapping, not {type(data).__name__}")
        redacted: dict[str, Any] = self.redactor.redact(data)
        return bound(redacted)

    def append(self, namespace: str, name: str, kind: str, data: Mapping[str, Any]) -> AuditRecord:
        """Redact `data`, append it as the next record, and return once it is on disk.
        Raises AuditUnwritable when the file system refuses it."""
        kind, prepared = check_kind(kind), self.prepare(data)
        try:
            return self._write(namespace, name, kind, prepared)
        except OSError as err:
            # The reason alone (strerror), not the path: it ends up in an Incident's status.
            unwritable = AuditUnwritable(
                f"the audit log could not be written: {err.strerror or err}"
            )
            unwritable.errno = err.errno
            raise unwritable from err

    async def aappend(
        self, namespace: str, name: str, kind: str, data: Mapping[str, Any]
    ) -> AuditRecord:
        """`append` for async code: the file work runs in a worker thread."""
        check_kind(kind)
        # The caller may change `data` once we yield, so its containers are copied here, on
        # the loop (cheap: strings are shared); redaction, which is not cheap on a large tool
        # output, runs in the thread with the file work.
        snapshot = _snapshot(data)
        with metrics.audit_write():
            return await asyncio.to_thread(self.append, namespace, name, kind, snapshot)

    def read(self, namespace: str, name: str) -> list[AuditRecord]:
        """Every record of an incident's log, in order; [] when it has none.

        Raises AuditError on a line that holds no record (run `verify` for the whole story).
        A last line without its newline is a write that never returned, so it is no record
        and is left out; the next append moves it aside.
        """
        path = self.path(namespace, name)
        try:
            lines, _torn = read_lines(path)
        except FileNotFoundError:
            return []
        records = []
        for number, line in enumerate(lines, 1):
            try:
                records.append(parse_line(line))
            except AuditError as err:
                raise AuditError(f"{path}: line {number}: {err}") from err
        return records

    def incidents(self) -> list[tuple[str, str]]:
        """(namespace, name) of every log under the root."""
        found: list[tuple[str, str]] = []
        if not self.root.is_dir():
            return found
        for file in self.root.glob("*/*.jsonl"):
            namespace, name = file.parent.name, file.name.removesuffix(".jsonl")
            try:
                log_path(self.root, namespace, name)
            except AuditError:
                continue  # not a log this class wrote (names are always Kubernetes names)
            found.append((namespace, name))
        return sorted(found)

    def _write(self, namespace: str, name: str, kind: str, data: dict[str, Any]) -> AuditRecord:
        path = self.path(namespace, name)
        make_dirs(path.parent)
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
            created = True
        except FileExistsError:
            fd = os.open(path, flags)
            created = False
        try:
            if created:
                fsync_dir(path.parent)
            # Released by close(), or by the kernel if this process dies mid-append.
            fcntl.flock(fd, fcntl.LOCK_EX)
            tail = _read_tail(fd)
            incident = f"{namespace}/{name}"
            # What this append found wrong is said in the log itself, before its record.
            notes = []
            if tail.unreadable is not None:
                notes.append(
                    {
                        "event": "unreadable_line",
                        "message": "the last line of the log holds no record"
                        f" ({tail.unreadable}); the chain goes on from it",
                    }
                )
            if tail.torn:
                notes.append(_move_torn(path, fd, tail))
            for note in notes:
                _, tail = _write_record(fd, tail, incident, "note", note)
            record, _ = _write_record(fd, tail, incident, kind, data)
            return record
        finally:
            os.close(fd)


def _read_tail(fd: int) -> _Tail:
    size = os.fstat(fd).st_size
    end = last_newline(fd, size) + 1
    torn = os.pread(fd, size - end, end)
    if end == 0:
        return _Tail(prev=ZERO_HASH, seq=0, end=0, torn=torn, unreadable=None)
    start = last_newline(fd, end - 1) + 1
    line = os.pread(fd, end - 1 - start, start)
    try:
        seq = parse_line(line).seq + 1
        unreadable = None
    except AuditError as err:
        seq = _last_good_seq(fd, start) + 1
        unreadable = str(err)
    return _Tail(prev=sha256(line), seq=seq, end=end, torn=torn, unreadable=unreadable)


def _last_good_seq(fd: int, end: int) -> int:
    # Only after a damaged last line, so reading the whole file is acceptable here.
    for line in reversed(os.pread(fd, end, 0).split(b"\n")):
        try:
            return parse_line(line).seq
        except AuditError:
            continue
    return -1


def _move_torn(path: Path, fd: int, tail: _Tail) -> dict[str, Any]:
    """Move the bytes after the last newline to a side file and cut them from the log.

    Not dropped: they may be all that is left of the last thing the operator did before it
    died, and `verify` checks that the side file is still there and unchanged.
    """
    number = 1
    while True:
        side = path.with_name(f"{path.name}.torn-{number}")
        try:
            side_fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            break
        except FileExistsError:
            number += 1
    try:
        write_all(side_fd, tail.torn)
        os.fsync(side_fd)
    finally:
        os.close(side_fd)
    fsync_dir(path.parent)
    os.ftruncate(fd, tail.end)
    os.fsync(fd)
    return {
        "event": "torn_line",
        "message": f"an interrupted write left {len(tail.torn)} bytes without a newline at the"
        f" end of the log; they were moved to {side.name}",
        "file": side.name,
        "bytes": len(tail.torn),
        "sha256": sha256(tail.torn),
    }


def _write_record(
    fd: int, tail: _Tail, incident: str, kind: str, data: dict[str, Any]
) -> tuple[AuditRecord, _Tail]:
    """Append one record after `tail` and sync it; the record and the new tail."""
    record = AuditRecord.seal(
        seq=tail.seq,
        time=datetime.now(UTC),
        incident=incident,
        kind=kind,
        data=data,
        prev=tail.prev,
    )
    line = record.line()
    size = os.fstat(fd).st_size
    try:
        write_all(fd, line + b"\n")
        os.fsync(fd)
    except OSError:
        # Leave no half line behind (a full disk, say); the caller gets the first error.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise
    after = _Tail(
        prev=sha256(line), seq=record.seq + 1, end=size + len(line) + 1, torn=b"", unreadable=None
    )
    return record, after
