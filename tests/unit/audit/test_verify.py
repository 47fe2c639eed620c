"""verify: any change to a log after it was written is found, on the line where it is."""

import tempfile
from functools import cache
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aiops.audit import AuditLog, verify
from aiops.audit.verify import Head
from tests.fixtures.audit_log import NAME, NAMESPACE, write_sample


@cache
def sample_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as root:
        log = AuditLog(Path(root))
        write_sample(log)
        return log.path(NAMESPACE, NAME).read_bytes()


def verify_bytes(content: bytes) -> list[str]:
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / f"{NAME}.jsonl"
        path.write_bytes(content)
        result = verify(path)
        assert result.ok is (not result.problems)
        return result.problems


def line_of(content: bytes, position: int) -> int:
    return content.count(b"\n", 0, position) + 1


def test_an_untouched_log_verifies() -> None:
    assert verify_bytes(sample_bytes()) == []


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_a_single_edited_byte_anywhere_is_found_on_its_line(data: st.DataObject) -> None:
    content = sample_bytes()
    position = data.draw(st.integers(min_value=0, max_value=len(content) - 1), label="position")
    replacement = data.draw(st.integers(min_value=0, max_value=255), label="byte")
    assume(replacement != content[position])
    edited = content[:position] + bytes([replacement]) + content[position + 1 :]
    problems = verify_bytes(edited)
    assert problems, f"byte {position} set to {replacement:#x} went unnoticed"
    assert any(p.startswith(f"line {line_of(content, position)}: ") for p in problems), problems


def test_an_escape_spelled_differently_is_found() -> None:
    # JSON reads \u001b and \u001B as the same character; the canonical-form check does not.
    content = sample_bytes()
    assert b"\\u001b" in content
    position = content.index(b"\\u001b")
    line = line_of(content, position)
    assert verify_bytes(content.replace(b"\\u001b", b"\\u001B", 1)) == [
        f"line {line}: not in canonical form (edited after it was written)",
        f"line {line + 1}: prev mismatch: line {line} is not the line this record was chained to"
        " (a line edited, removed, inserted or moved)",
    ]


def lines() -> list[bytes]:
    return sample_bytes().splitlines(keepends=True)


def test_a_deleted_line_is_found() -> None:
    kept = lines()
    del kept[3]
    problems = verify_bytes(b"".join(kept))
    assert problems == [
        "line 4: prev mismatch: line 3 is not the line this record was chained to"
        " (a line edited, removed, inserted or moved)",
        "line 4: seq gap: seq 4 where 3 was expected (records removed, repeated or moved)",
    ]


def test_a_deleted_first_line_is_found() -> None:
    problems = verify_bytes(b"".join(lines()[1:]))
    assert problems[0].startswith("line 1: prev mismatch")
    assert "line 1: seq gap: seq 1 where 0 was expected" in problems[1]


def test_reordered_lines_are_found() -> None:
    swapped = lines()
    swapped[2], swapped[5] = swapped[5], swapped[2]
    problems = verify_bytes(b"".join(swapped))
    assert {p.split(":")[0] for p in problems} == {"line 3", "line 4", "line 6", "line 7"}


def test_a_repeated_line_is_found() -> None:
    doubled = lines()
    doubled.insert(4, doubled[3])
    assert [p.split(":")[0] for p in verify_bytes(b"".join(doubled))] == ["line 5"] * 2


def test_a_file_cut_mid_line_is_found() -> None:
    content = sample_bytes()
    for cut in (len(content) - 1, len(content) // 2, 5):
        problems = verify_bytes(content[:cut])
        assert problems[-1].startswith(f"line {line_of(content, cut)}: incomplete: ")


def test_appended_garbage_is_found() -> None:
    content = sample_bytes()
    count = len(lines())
    assert verify_bytes(content + b"garbage\n") == [
        f"line {count + 1}: not JSON (Expecting value at column 1)"
    ]
    assert verify_bytes(content + b"{}") == [
        f"line {count + 1}: incomplete: 2 bytes without a newline at the end"
        " (an interrupted write, or a truncated or extended file)"
    ]
    assert verify_bytes(content + lines()[-1]) == [
        f"line {count + 1}: prev mismatch: line {count} is not the line this record was chained"
        " to (a line edited, removed, inserted or moved)",
        f"line {count + 1}: seq gap: seq {count - 1} where {count} was expected"
        " (records removed, repeated or moved)",
    ]


def test_a_record_from_another_incidents_log_is_found(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.append("ns", "a", "note", {})
    log.append("ns", "b", "note", {})
    log.path("ns", "a").write_bytes(log.path("ns", "b").read_bytes())
    result = verify(log.path("ns", "a"), incident="ns/a")
    assert result.problems == ["line 1: a record of 'ns/b' in 'ns/a''s log"]


def test_an_empty_log_verifies(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_bytes(b"")
    result = verify(tmp_path / "x.jsonl")
    assert (result.ok, result.records) == (True, 0)


# -- the end of the log, against the audit head the Incident recorded ---------------------------


def head_of(log: AuditLog, seq: int) -> Head:
    record = log.read(NAMESPACE, NAME)[seq]
    return Head(seq=record.seq, hash=record.hash)


def test_a_log_that_holds_its_head_verifies(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    write_sample(log)
    path = log.path(NAMESPACE, NAME)
    assert verify(path, head=head_of(log, 8)).problems == []
    # Records written after the last phase change are fine: the head is a floor, not a cap.
    assert verify(path, head=head_of(log, 5)).problems == []


def test_records_cut_from_the_end_are_found_only_with_the_head(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    write_sample(log)
    path = log.path(NAMESPACE, NAME)
    head = head_of(log, 8)
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:6]))
    assert verify(path).problems == []  # the chain that is left is valid
    assert verify(path, head=head).problems == [
        f"the Incident's audit head (seq 8, hash {head.hash[:12]}…) is not in the log, which"
        " ends at seq 5: records were cut from its end"
    ]


def test_a_rewritten_tail_is_found(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    write_sample(log)
    path = log.path(NAMESPACE, NAME)
    head = head_of(log, 8)
    # Cut the last record and write another in its place: a perfectly chained log again.
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:8]))
    log.append(NAMESPACE, NAME, "phase", {"from": "Verifying", "to": "Resolved"})
    assert verify(path).problems == []
    [problem] = verify(path, head=head).problems
    assert problem.startswith("line 9: seq 8 is not the Incident's audit head")
    assert "rewritten" in problem


def test_a_torn_head_is_reported_as_torn_not_as_an_interrupted_write(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    write_sample(log)
    path = log.path(NAMESPACE, NAME)
    head = head_of(log, 8)
    content = path.read_bytes()
    path.write_bytes(content[:-20])  # the head record, cut short
    problems = verify(path, head=head).problems
    assert problems[0].startswith("line 9: incomplete: ")
    assert problems[1].startswith("line 9: torn: the Incident's audit head (seq 8")
    assert "cut after the fact" in problems[1]
    # The next append moves the torn line aside and calls it an interrupted write; with the
    # head, verify knows better: that record had been written whole.
    log.append(NAMESPACE, NAME, "note", {})
    result = verify(path, head=head)
    assert any("interrupted write" in n for n in result.notes)
    assert verify(path).problems == []
    [problem] = result.problems
    assert problem.startswith("line 9: seq 8 is not the Incident's audit head")
    # Cut at the newline only: the whole record is moved aside, and verify says where it went.
    log2 = AuditLog(tmp_path / "two")
    write_sample(log2)
    path2 = log2.path(NAMESPACE, NAME)
    head2 = head_of(log2, 8)
    path2.write_bytes(path2.read_bytes()[:-1])
    log2.append(NAMESPACE, NAME, "note", {})
    [problem] = verify(path2, head=head2).problems
    assert f"was moved to {NAME}.jsonl.torn-1 as a torn line" in problem


def test_the_cli_takes_a_head_and_refuses_a_malformed_one(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from aiops.cli.main import app

    log = AuditLog(tmp_path)
    write_sample(log)
    head = head_of(log, 8)
    path = log.path(NAMESPACE, NAME)
    run = CliRunner().invoke
    base = ["audit", "verify", f"{NAMESPACE}/{NAME}", "--audit-dir", str(tmp_path)]
    assert run(app, [*base, "--head", f"8:{head.hash}"]).exit_code == 0
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:7]))
    result = run(app, [*base, "--head", f"8:{head.hash}"])
    assert result.exit_code == 1 and "records were cut from its end" in result.output
    result = run(app, [*base, "--head", "8:nothex"])
    assert result.exit_code == 2 and "is not SEQ:HASH" in result.output
