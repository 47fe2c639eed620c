"""`aiops audit show` and `aiops audit verify`, through the real command line app."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aiops.audit import AuditLog
from aiops.cli.main import app
from tests.fixtures.audit_log import NAME, NAMESPACE, write_sample

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    # Offline: the check against the Incidents' audit heads is tests/unit/audit/test_verify.py.
    extra = ["--no-cluster"] if args[:1] == ("verify",) else []
    result = runner.invoke(app, ["audit", *args, *extra])
    return result.exit_code, result.output


def test_show_renders_a_line_per_record(log: AuditLog, sample: Path) -> None:
    code, out = invoke("show", NAME, "-n", NAMESPACE, "--audit-dir", str(log.root))
    assert code == 0
    header, *rows = out.splitlines()
    assert header == f"{NAMESPACE}/{NAME}: 9 records in {sample}"
    assert len(rows) == 9
    assert rows[0].endswith("   0  phase            Open → Investigating agent started")
    # Fields in the stored (sorted) order; containers by size.
    assert rows[3].endswith("   3  tool.call        args={1 fields} tool=pd.stores")
    assert rows[5].endswith("   5  policy.decision  action=evict_leader risk=low verdict=run")


def test_show_json_prints_the_stored_records(log: AuditLog, sample: Path) -> None:
    code, out = invoke("show", f"{NAMESPACE}/{NAME}", "--audit-dir", str(log.root), "--json")
    assert code == 0
    assert out.encode().splitlines() == sample.read_bytes().splitlines()
    assert [json.loads(line)["seq"] for line in out.splitlines()] == list(range(9))


def test_show_reads_the_directory_from_the_environment(
    log: AuditLog, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIOPS_AUDIT_DIR", str(log.root))
    code, out = invoke("show", f"{NAMESPACE}/{NAME}")
    assert code == 0 and out.startswith(f"{NAMESPACE}/{NAME}: 9 records")


def test_show_marks_damage_but_still_shows_the_rest(log: AuditLog, sample: Path) -> None:
    with sample.open("ab") as file:
        file.write(b"garbage\n{")
    code, out = invoke("show", f"{NAMESPACE}/{NAME}", "--audit-dir", str(log.root))
    assert code == 0
    assert "line 10: not JSON" in out and "line 11: incomplete (1 bytes, no newline)" in out
    assert "2 lines hold no record" in out and out.count("agent started") == 1


def test_show_of_a_missing_log_fails(tmp_path: Path) -> None:
    code, out = invoke("show", "nope", "--audit-dir", str(tmp_path / "none"))
    assert code == 1 and "no audit log for default/nope" in out
    assert not (tmp_path / "none").exists()  # reading creates nothing


def test_show_refuses_conflicting_namespaces_and_bad_names(tmp_path: Path) -> None:
    assert invoke("show", "a/x", "-n", "b", "--audit-dir", str(tmp_path))[0] == 2
    code, out = invoke("show", "../../x", "--audit-dir", str(tmp_path))
    assert code == 2 and "not a Kubernetes name" in out


def test_verify_passes_intact_logs_and_fails_on_one_edited_byte(log: AuditLog) -> None:
    write_sample(log, "ns-a", "one")
    write_sample(log, "ns-b", "two")
    code, out = invoke("verify", "--audit-dir", str(log.root))
    assert code == 0
    assert out == f"verified 2 logs, 18 records under {log.root}: every chain intact\n"

    path = log.path("ns-b", "two")
    content = path.read_bytes()
    position = content.index(b"evict_leader")  # on line 6
    path.write_bytes(content[:position] + b"E" + content[position + 1 :])
    code, out = invoke("verify", "--audit-dir", str(log.root))
    assert code == 1
    assert out.splitlines()[0].startswith("ns-b/two: line 6: hash mismatch")
    assert out.splitlines()[1].startswith("ns-b/two: line 7: prev mismatch")
    assert out.splitlines()[-1] == f"verified 2 logs, 17 records under {log.root}: 2 problems"

    # One incident at a time, by name and namespace.
    assert invoke("verify", "one", "-n", "ns-a", "--audit-dir", str(log.root))[0] == 0
    assert invoke("verify", "ns-b/two", "--audit-dir", str(log.root))[0] == 1
    assert invoke("verify", "-n", "ns-a", "--audit-dir", str(log.root))[0] == 0


def test_verify_reports_torn_lines_as_notes(log: AuditLog, sample: Path) -> None:
    with sample.open("ab") as file:
        file.write(b'{"da')
    assert invoke("verify", "--audit-dir", str(log.root))[0] == 1
    log.append(NAMESPACE, NAME, "note", {})
    code, out = invoke("verify", "--audit-dir", str(log.root))
    assert code == 0
    assert f"{NAMESPACE}/{NAME}: note: line 10: an interrupted write left 4 bytes" in out


def test_verify_of_a_missing_log_fails_and_of_no_logs_passes(tmp_path: Path) -> None:
    assert invoke("verify", "nope", "--audit-dir", str(tmp_path))[0] == 1
    code, out = invoke("verify", "--audit-dir", str(tmp_path / "none"))
    assert code == 0 and "verified 0 logs" in out
