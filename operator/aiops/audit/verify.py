"""Checking an audit log: every line a record, every record chained to the line before it,
and, given the head the Incident's status recorded, nothing cut from or rewritten at its end."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from pydantic import BaseModel

from aiops.audit.files import read_lines
from aiops.audit.record import ZERO_HASH, AuditError, AuditRecord, parse_line, sha256


class Head(BaseModel):
    """A record the log must hold: the Incident's `status.auditHead` (seq and hash)."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Head:
        """`SEQ:HASH`, as `aiops audit verify --head` takes it."""
        seq, sep, digest = text.partition(":")
        if not sep or not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(f"{text!r} is not SEQ:HASH (a number, a colon, 64 hex digits)")
        return cls(seq=int(seq), hash=digest)


class VerifyResult(BaseModel):
    """What `verify` found. `problems` fail the log; `notes` are for the reader only."""

    path: Path
    ok: bool
    records: int
    problems: list[str]
    notes: list[str]


def verify(path: Path, incident: str | None = None, head: Head | None = None) -> VerifyResult:
    """Check a log line by line; each problem names the (1-based) line it is on.

    A line must be a record in canonical form whose hash matches its content, whose `prev`
    is the sha256 of the line before it, whose `seq` follows the last good record's, and whose
    `incident` is the log's (`incident` when given, else the first record's). Torn lines
    moved aside by the writer must still be in their side files, unchanged.

    What no chain can show: whole records cut from the end. `head` (the Incident's
    `status.auditHead`, recorded after that record was on disk) shows it: the log must hold a
    record with that seq and hash; a log that ends before it was cut, one that holds another
    record there was rewritten, and one whose head record is a torn last line or was moved
    aside as one was cut after the fact (a record on disk before its head was recorded cannot
    have been torn by a crash).
    """
    lines, rest = read_lines(path)
    problems: list[str] = []
    notes: list[str] = []
    referenced: set[str] = set()
    expected_seq = 0
    expected_prev = ZERO_HASH
    records = 0
    unreadable = 0  # lines since the last good record that hold none
    seen: dict[int, tuple[int, str]] = {}  # seq -> (line, hash) of the first such record
    torn_aside: dict[str, bytes] = {}  # side file -> the torn bytes it holds
    for number, line in enumerate(lines, 1):
        prev, expected_prev = expected_prev, sha256(line)
        try:
            record = parse_line(line)
        except AuditError as err:
            problems.append(f"line {number}: {err}")
            unreadable += 1
            continue
        records += 1
        incident = incident or record.incident
        if record.prev != prev:
            problems.append(
                f"line {number}: prev mismatch: line {number - 1} is not the line this record"
                " was chained to (a line edited, removed, inserted or moved)"
                if number > 1
                else f"line 1: prev mismatch: the first record must have prev {ZERO_HASH[:12]}…"
            )
        # A damaged line may have been a record (its seq used) or not (garbage the writer
        # chained over): either is one problem, already reported, not a second one here.
        if not expected_seq <= record.seq <= expected_seq + unreadable:
            problems.append(
                f"line {number}: seq gap: seq {record.seq} where {expected_seq} was expected"
                " (records removed, repeated or moved)"
            )
        expected_seq, unreadable = record.seq + 1, 0
        seen.setdefault(record.seq, (number, record.hash))
        if record.incident != incident:
            problems.append(f"line {number}: a record of {record.incident!r} in {incident!r}'s log")
        if record.kind == "note" and record.data.get("event") == "torn_line":
            side = _check_torn(path, number, record, problems)
            if side:
                referenced.add(side)
                with contextlib.suppress(OSError):
                    torn_aside[side] = (path.parent / side).read_bytes()
                notes.append(f"line {number}: {record.data.get('message')}")
    if rest:
        problems.append(
            f"line {len(lines) + 1}: incomplete: {len(rest)} bytes without a newline at the end"
            " (an interrupted write, or a truncated or extended file)"
        )
    if head is not None:
        problems.extend(_check_head(head, seen, len(lines) + 1 if rest else None, torn_aside))
    for stray in sorted(path.parent.glob(f"{path.name}.torn-*")):
        if stray.name not in referenced:
            notes.append(
                f"{stray.name}: a torn line that no note mentions (left by a writer"
                " that stopped before it could say so)"
            )
    return VerifyResult(path=path, ok=not problems, records=records, problems=problems, notes=notes)


def _check_torn(path: Path, number: int, record: AuditRecord, problems: list[str]) -> str | None:
    name = record.data.get("file")
    # A tampered note must not send us to read some other file.
    if not isinstance(name, str) or not re.fullmatch(re.escape(path.name) + r"\.torn-\d+", name):
        problems.append(f"line {number}: a torn-line note names no side file of this log")
        return None
    try:
        content = (path.parent / name).read_bytes()
    except FileNotFoundError:
        problems.append(f"line {number}: {name}, the torn line this record moved aside, is gone")
        return name
    if sha256(content) != record.data.get("sha256"):
        problems.append(f"line {number}: {name} was changed after the torn line was moved there")
    return name


def _check_head(
    head: Head,
    seen: dict[int, tuple[int, str]],
    torn_line: int | None,
    torn_aside: dict[str, bytes],
) -> list[str]:
    """What is wrong with the end of the log, given the head the Incident recorded."""
    said = f"the Incident's audit head (seq {head.seq}, hash {head.hash[:12]}…)"
    found = seen.get(head.seq)
    if found is not None and found[1] == head.hash:
        return []
    aside = next((name for name, content in torn_aside.items() if _holds(content, head)), None)
    if aside is not None:
        return [
            f"{said} was moved to {aside} as a torn line by a later append: it had been "
            "written whole before the Incident recorded it, so the log was cut after the fact"
        ]
    if found is not None:
        return [f"line {found[0]}: seq {head.seq} is not {said}: the log was rewritten from there"]
    last = max(seen, default=-1)
    if torn_line is not None and last < head.seq:
        return [
            f"line {torn_line}: torn: {said} was written whole before the Incident recorded "
            f"it, and the log now ends in a torn line after seq {last}: it was cut after "
            "the fact"
        ]
    ends = f"ends at seq {last}" if last >= 0 else "holds no record"
    return [f"{said} is not in the log, which {ends}: records were cut from its end"]


def _holds(content: bytes, head: Head) -> bool:
    try:
        record = parse_line(content.rstrip(b"\n"))
    except AuditError:
        return False
    return record.seq == head.seq and record.hash == head.hash
