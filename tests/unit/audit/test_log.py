"""Appending: the chain, durability, redaction before the disk, bounded records, torn lines."""

import asyncio
import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from aiops.audit import (
    MAX_RECORD_BYTES,
    TRUNCATED,
    AuditError,
    AuditLog,
    AuditUnwritable,
    verify,
)
from aiops.redact import REDACTED, Redactor
from tests.fixtures.audit_log import NAME, NAMESPACE, write_sample

ZERO = "0" * 64


def test_records_chain_and_read_back(log: AuditLog) -> None:
    written = write_sample(log)
    path = log.path(NAMESPACE, NAME)
    assert path == log.root / NAMESPACE / f"{NAME}.jsonl"
    assert log.read(NAMESPACE, NAME) == written
    lines = path.read_bytes().splitlines()
    assert [r.seq for r in written] == list(range(len(written)))
    assert written[0].prev == ZERO
    for record, previous_line in zip(written[1:], lines, strict=False):
        assert record.prev == hashlib.sha256(previous_line).hexdigest()
    assert all(r.incident == f"{NAMESPACE}/{NAME}" for r in written)
    assert all(r.time.utcoffset() == timedelta(0) for r in written)
    assert written[4].data["output"].startswith("\x1b[31mERROR")
    result = verify(path)
    assert (result.ok, result.records, result.problems) == (True, len(written), [])


def test_each_incident_has_its_own_chain(log: AuditLog) -> None:
    log.append("a", "one", "note", {"n": 1})
    log.append("b", "one", "note", {"n": 1})
    second = log.append("a", "one", "note", {"n": 2})
    assert second.seq == 1
    assert log.incidents() == [("a", "one"), ("b", "one")]
    assert log.read("a", "missing") == []


@pytest.mark.parametrize(
    ("namespace", "name", "kind"),
    [
        ("..", "x", "note"),
        ("ns", "../../etc/passwd", "note"),
        ("ns", "", "note"),
        ("NS", "x", "note"),
        ("ns", "x", ""),
        ("ns", "x", "Tool Call"),
    ],
)
def test_bad_names_and_kinds_are_refused(
    log: AuditLog, namespace: str, name: str, kind: str
) -> None:
    with pytest.raises(AuditError):
        log.append(namespace, name, kind, {})
    assert list(log.root.rglob("*")) == []


def test_secrets_in_nested_data_never_reach_the_file(tmp_path: Path) -> None:
    redactor = Redactor()
    redactor.register("registered-fake-value-0042")
    log = AuditLog(tmp_path, redactor)
    data = {
        "request": {"headers": {"x-api-key": "sk-ant-api03-FAKEFAKEFAKEFAKE-one"}},
        "messages": [
            {"role": "user", "content": "key is sk-ant-api03-FAKEFAKEFAKEFAKE-two"},
            {"role": "tool", "content": ["curl -H 'Authorization: Bearer fakebearer0000' pd"]},
        ],
        "url": "redis://default:fakeredispass@redis:6379",
        "env": "LOADED=registered-fake-value-0042",
    }
    record = log.append("ns", "inc", "model.request", data)
    on_disk = log.path("ns", "inc").read_text()
    for secret in ("FAKEFAKEFAKEFAKE", "fakebearer0000", "fakeredispass", "registered-fake-value"):
        assert secret not in on_disk
        assert secret not in json.dumps(record.data)
    assert on_disk.count(REDACTED) == 5
    assert data["url"] == "redis://default:fakeredispass@redis:6379"  # caller's data untouched


def test_a_large_record_is_clipped_to_the_limit_with_a_marker(log: AuditLog) -> None:
    output = "HEAD" + "x" * (2 * MAX_RECORD_BYTES) + "TAIL"
    data = {"tool": "logs", "output": output}
    record = log.append("ns", "inc", "tool.result", data)
    line = log.path("ns", "inc").read_bytes()
    assert len(line) < MAX_RECORD_BYTES + 1024
    assert record.data["tool"] == "logs"
    size = len(json.dumps(data, separators=(",", ":")))
    assert record.data[TRUNCATED] == {"bytes": size, "limit": MAX_RECORD_BYTES}
    clipped = record.data["output"]
    assert clipped.startswith("HEAD") and clipped.endswith("TAIL") and "characters cut" in clipped
    assert verify(log.path("ns", "inc")).ok


def test_large_data_of_small_parts_becomes_a_preview(log: AuditLog) -> None:
    record = log.append("ns", "inc", "tool.result", {"samples": list(range(200_000))})
    assert set(record.data) == {TRUNCATED, "preview"}
    assert record.data["preview"].startswith('{"samples":[0,1,2,')
    assert len(log.path("ns", "inc").read_bytes()) < MAX_RECORD_BYTES + 1024


def test_small_data_is_kept_whole(log: AuditLog) -> None:
    output = "y" * (MAX_RECORD_BYTES // 2)
    assert log.append("ns", "inc", "tool.result", {"output": output}).data == {"output": output}


def _inode(path_or_fd: Path | int) -> tuple[int, int]:
    st = os.stat(path_or_fd) if isinstance(path_or_fd, Path) else os.fstat(path_or_fd)
    return st.st_dev, st.st_ino


def test_appends_fsync_the_file_and_a_new_files_directory(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[tuple[int, int]] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(_inode(fd))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    log.append("ns", "inc", "note", {"n": 1})
    path = log.path("ns", "inc")
    assert _inode(path) in synced
    assert _inode(path.parent) in synced  # the new file's entry
    assert _inode(log.root) in synced  # the new namespace directory's entry
    synced.clear()
    log.append("ns", "inc", "note", {"n": 2})
    assert synced == [_inode(path)]  # an existing file: the file alone


_WRITER = """
import sys
from pathlib import Path
from aiops.audit import AuditLog
log = AuditLog(Path(sys.argv[1]))
record = log.append("ns", "inc", "action.started", {"id": "a0"})
print(record.hash, flush=True)
sys.stdin.read()  # wait to be killed
"""


def test_a_record_survives_its_writer_being_killed_right_after_append(tmp_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        returned_hash = writer.stdout.readline().strip()
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    finally:
        if writer.poll() is None:
            writer.kill()
    log = AuditLog(tmp_path)
    assert [r.hash for r in log.read("ns", "inc")] == [returned_hash]
    assert verify(log.path("ns", "inc")).ok


def _tear(path: Path, fragment: bytes) -> None:
    with path.open("ab") as file:
        file.write(fragment)


def test_a_torn_last_line_is_moved_aside_and_noted(log: AuditLog, sample: Path) -> None:
    before = log.read(NAMESPACE, NAME)
    fragment = b'{"data":{"id":"a1"},"hash":"4f'
    _tear(sample, fragment)
    # Until the next append: no record, and verify says where the damage is.
    assert log.read(NAMESPACE, NAME) == before
    broken = verify(sample)
    assert not broken.ok
    assert broken.problems == [
        f"line {len(before) + 1}: incomplete: {len(fragment)} bytes without a newline at the end"
        " (an interrupted write, or a truncated or extended file)"
    ]

    record = log.append(NAMESPACE, NAME, "action.started", {"id": "a1"})
    side = sample.with_name(f"{NAME}.jsonl.torn-1")
    assert side.read_bytes() == fragment
    after = log.read(NAMESPACE, NAME)
    note = after[len(before)]
    assert note.kind == "note" and note.data["file"] == side.name
    assert note.data["bytes"] == len(fragment) and f"moved to {side.name}" in note.data["message"]
    assert after == [*before, note, record]
    assert record.seq == len(before) + 1
    result = verify(sample)
    assert result.ok and result.records == len(before) + 2
    assert result.notes == [f"line {len(before) + 1}: {note.data['message']}"]

    # A second tear gets a side file of its own.
    _tear(sample, b"{")
    log.append(NAMESPACE, NAME, "note", {})
    assert sample.with_name(f"{NAME}.jsonl.torn-2").read_bytes() == b"{"
    assert verify(sample).ok

    # The moved bytes are evidence: verify fails if they go or change.
    side.write_bytes(b"something else")
    assert verify(sample).problems == [
        f"line {len(before) + 1}: {side.name} was changed after the torn line was moved there"
    ]
    side.unlink()
    assert verify(sample).problems == [
        f"line {len(before) + 1}: {side.name}, the torn line this record moved aside, is gone"
    ]


def test_a_torn_first_line_is_handled_too(log: AuditLog) -> None:
    path = log.path("ns", "inc")
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"data":')
    record = log.append("ns", "inc", "phase", {"to": "Open"})
    assert [r.seq for r in log.read("ns", "inc")] == [0, 1] and record.seq == 1
    assert verify(path).ok


def test_a_damaged_last_line_is_noted_and_the_chain_goes_on_over_it(
    log: AuditLog, sample: Path
) -> None:
    count = len(log.read(NAMESPACE, NAME))
    _tear(sample, b"not a record\n")
    record = log.append(NAMESPACE, NAME, "note", {"n": 1})
    result = verify(sample)
    # The damage stays on record: one problem, on the garbage line; the chain is intact after.
    assert result.problems == [f"line {count + 1}: not JSON (Expecting value at column 1)"]
    with pytest.raises(AuditError, match=f"line {count + 1}: not JSON"):
        log.read(NAMESPACE, NAME)
    lines = sample.read_bytes().splitlines()
    note = json.loads(lines[count + 1])
    assert note["kind"] == "note" and "holds no record" in note["data"]["message"]
    assert note["seq"] == count and record.seq == count + 1


async def test_concurrent_async_appends_form_one_chain(log: AuditLog) -> None:
    records = await asyncio.gather(
        *(log.aappend("ns", "inc", "tool.call", {"i": i}) for i in range(40))
    )
    assert sorted(r.seq for r in records) == list(range(40))
    result = verify(log.path("ns", "inc"))
    assert result.ok and result.records == 40


async def test_aappend_records_data_as_it_was_when_called(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = threading.Event()
    redact = log.redactor.redact

    def redact_after_the_change(value: object) -> object:
        changed.wait(timeout=5)  # the worker thread reads the data only after the caller changed it
        return redact(value)

    monkeypatch.setattr(log.redactor, "redact", redact_after_the_change)
    data: dict[str, Any] = {"items": [1], "meta": {"n": 1}}
    pending = asyncio.ensure_future(log.aappend("ns", "inc", "note", data))
    await asyncio.sleep(0)
    data["items"].append(2)
    data["meta"]["n"] = 2
    changed.set()
    assert (await pending).data == {"items": [1], "meta": {"n": 1}}


def test_garbage_then_a_torn_line_are_both_noted(log: AuditLog, sample: Path) -> None:
    count = len(log.read(NAMESPACE, NAME))
    _tear(sample, b"garbage\n{")
    record = log.append(NAMESPACE, NAME, "note", {})
    lines = [json.loads(line) for line in sample.read_bytes().splitlines()[count + 1 :]]
    assert [line["data"].get("event") for line in lines] == [
        "unreadable_line",
        "torn_line",
        None,
    ]
    assert record.seq == count + 2
    result = verify(sample)
    assert result.problems == [f"line {count + 1}: not JSON (Expecting value at column 1)"]
    assert len(result.notes) == 1


def test_a_failed_write_leaves_no_half_line(
    log: AuditLog, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sample.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        log.append(NAMESPACE, NAME, "note", {"lost": True})
    monkeypatch.undo()
    assert sample.read_bytes() == before
    assert log.append(NAMESPACE, NAME, "note", {}).seq == 9
    assert verify(sample).ok


def test_a_refused_write_is_audit_unwritable_with_the_reason_and_no_path(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    (tmp_path / "ns").write_text("a file where the namespace's directory would go")
    with pytest.raises(AuditUnwritable) as caught:
        log.append("ns", "inc", "note", {"x": 1})
    assert str(caught.value) == "the audit log could not be written: Not a directory"
    assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOTDIR
