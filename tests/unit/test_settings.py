"""The operator's settings, defined once (`aiops.settings`): every variable with its default,
read from the environment or a flag of `aiops operator run`, and a bad one refused at start
with the variable named; docs/settings.md generated from the model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import kopf
import pytest
from typer.testing import CliRunner

from aiops import docgen
from aiops.cli.main import app
from aiops.loops.startup import operator_settings
from aiops.settings import (
    OperatorSettings,
    SettingsError,
    WorkstationSettings,
    env_name,
    markdown,
)

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "settings.md"
OPERATOR_VARS = [env_name(f) for f in OperatorSettings.model_fields.values()]


def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    s = OperatorSettings.from_env({"XDG_STATE_HOME": str(tmp_path)})
    assert s.audit_dir == tmp_path / "aiops" / "audit"
    assert s.operator_namespace == "aiops-system"
    assert (s.approval_timeout, s.verify_timeout) == (timedelta(minutes=30), timedelta(minutes=1))
    assert s.actions_per_incident == 5
    assert (s.chaos_max_duration, s.chaos_settle_timeout) == (
        timedelta(hours=1),
        timedelta(minutes=5),
    )
    assert (s.agent_max_refused_per_turn, s.agent_max_refused_per_session) == (8, 12)
    assert (s.kubectl, s.kubectl_binary) == (None, "kubectl")
    assert s.anthropic_base_url is s.api_key is s.kubeconfig is None
    home = OperatorSettings.from_env({})  # no XDG_STATE_HOME: under the home directory
    assert home.audit_dir == Path.home() / ".local" / "state" / "aiops" / "audit"


def test_every_variable_is_read(tmp_path: Path) -> None:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("#!/bin/sh\n")
    kubectl.chmod(0o755)
    s = OperatorSettings.from_env(
        {
            "AIOPS_AUDIT_DIR": str(tmp_path / "audit"),
            "AIOPS_OPERATOR_NAMESPACE": "ops",
            "AIOPS_APPROVAL_TIMEOUT": "120",  # seconds, as the chart and older setups give it
            "AIOPS_VERIFY_TIMEOUT": " 1m30s ",  # or a duration; surrounding blanks do not count
            "AIOPS_ACTIONS_PER_INCIDENT": "0",
            "AIOPS_CHAOS_MAX_DURATION": "90s",
            "AIOPS_CHAOS_SETTLE_TIMEOUT": "2m",
            "AIOPS_AGENT_MAX_REFUSED_PER_TURN": "2",
            "AIOPS_AGENT_MAX_REFUSED_PER_SESSION": " 4 ",
            "AIOPS_KUBECTL": str(kubectl),
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
            "ANTHROPIC_API_KEY": "sk-test-not-a-real-key",
            "KUBECONFIG": "/a/config:/b/config",  # kubectl's list form is passed on as it is
        }
    )
    assert s.audit_dir == tmp_path / "audit" and s.operator_namespace == "ops"
    assert (s.approval_timeout, s.verify_timeout) == (timedelta(seconds=120), timedelta(seconds=90))
    assert s.actions_per_incident == 0
    assert (s.chaos_max_duration, s.chaos_settle_timeout) == (
        timedelta(seconds=90),
        timedelta(minutes=2),
    )
    assert (s.agent_max_refused_per_turn, s.agent_max_refused_per_session) == (2, 4)
    assert s.kubectl_binary == str(kubectl)
    assert s.anthropic_base_url == "http://127.0.0.1:9"
    assert s.api_key == "sk-test-not-a-real-key"
    assert "sk-test" not in repr(s)  # the key is a secret in the model, too
    assert s.kubeconfig == "/a/config:/b/config"
    # Set but empty is not set: the default (as the code before the model did).
    assert OperatorSettings.from_env({"AIOPS_APPROVAL_TIMEOUT": "  "}).approval_timeout == (
        timedelta(minutes=30)
    )


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("AIOPS_APPROVAL_TIMEOUT", "soon", "not a duration like 30s, 5m or 1h30m"),
        ("AIOPS_APPROVAL_TIMEOUT", "0", "greater than or equal to 1 second"),
        ("AIOPS_APPROVAL_TIMEOUT", "-5", "not a duration"),
        ("AIOPS_VERIFY_TIMEOUT", "2h", "less than or equal to 1 hour"),
        ("AIOPS_ACTIONS_PER_INCIDENT", "five", "valid integer"),
        ("AIOPS_ACTIONS_PER_INCIDENT", "101", "less than or equal to 100"),
        ("AIOPS_CHAOS_MAX_DURATION", "an hour", "not a duration"),
        ("AIOPS_CHAOS_MAX_DURATION", "25h", "less than or equal to 1 day"),
        ("AIOPS_CHAOS_SETTLE_TIMEOUT", "1.5h", "not a duration"),
        ("AIOPS_AGENT_MAX_REFUSED_PER_TURN", "0", "greater than or equal to 1"),
        ("AIOPS_AGENT_MAX_REFUSED_PER_SESSION", "1e3", "valid integer"),
        ("AIOPS_AGENT_MAX_REFUSED_PER_SESSION", "10000", "less than or equal to 1000"),
        ("AIOPS_AGENT_MAX_REFUSED_PER_SESSION", "9" * 5000, "integer"),
        ("AIOPS_OPERATOR_NAMESPACE", "Team_A", "not a namespace name"),
        ("AIOPS_KUBECTL", "/nowhere/kubectl", "no such executable"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_the_value(
    var: str, value: str, says: str
) -> None:
    with pytest.raises(SettingsError) as err:
        OperatorSettings.from_env({var: value})
    message = str(err.value)
    assert message.startswith(f"{var}="), message
    assert says in message, message
    assert value[:30] in message and len(message) < 300  # the value, clipped


def test_every_bad_variable_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as err:
        OperatorSettings.from_env({"AIOPS_VERIFY_TIMEOUT": "x", "AIOPS_ACTIONS_PER_INCIDENT": "y"})
    assert "AIOPS_VERIFY_TIMEOUT='x'" in str(err.value)
    assert "AIOPS_ACTIONS_PER_INCIDENT='y'" in str(err.value)


def test_a_value_that_may_hold_a_secret_is_never_repeated() -> None:
    with pytest.raises(SettingsError) as err:
        OperatorSettings.from_env({"ANTHROPIC_BASE_URL": "ftp://user:hunter2@proxy"})
    assert str(err.value) == "ANTHROPIC_BASE_URL: not an http(s) URL with a host"


# -- `aiops operator run` -------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, ["operator", *args], env=env)


def test_run_help_lists_every_setting_with_its_variable() -> None:
    result = run_cli("run", "--help", env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    text = re.sub(r"\s+", " ", result.output)
    for name, f in OperatorSettings.model_fields.items():
        var = env_name(f)
        assert var in text, var
        flagged = f"--{name.replace('_', '-')}" in text
        assert flagged != (var in ("ANTHROPIC_API_KEY", "KUBECONFIG")), var  # never a secret


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--approval-timeout", "soon"], {}, "AIOPS_APPROVAL_TIMEOUT='soon'"),
        ([], {"AIOPS_VERIFY_TIMEOUT": "0"}, "AIOPS_VERIFY_TIMEOUT='0'"),
        (
            [],
            {"AIOPS_AGENT_MAX_REFUSED_PER_TURN": "many"},
            "AIOPS_AGENT_MAX_REFUSED_PER_TURN='many'",
        ),
    ],
)
def test_run_refuses_a_bad_setting_before_the_operator_starts(
    args: list[str], env: dict[str, str], says: str
) -> None:
    # No cluster here: had the operator started, it would fail on the connection instead.
    result = run_cli("run", "-n", "default", *args, env={"KUBECONFIG": "/nonexistent", **env})
    assert result.exit_code == 2, result.output
    assert "bad settings" in result.output and says in result.output, result.output


def test_a_flag_wins_over_its_variable() -> None:
    result = run_cli(
        "run", "-n", "default", "--verify-timeout", "bad", env={"AIOPS_VERIFY_TIMEOUT": "30s"}
    )
    assert "AIOPS_VERIFY_TIMEOUT='bad'" in result.output, result.output


def test_kopf_run_without_the_cli_stops_at_start_on_a_bad_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run as `kopf run -m aiops.handlers` (or kopf's test runner), the startup handler reads
    the environment; a PermanentError makes kopf stop instead of retrying."""
    monkeypatch.setenv("AIOPS_CHAOS_SETTLE_TIMEOUT", "forever")
    with pytest.raises(kopf.PermanentError, match="AIOPS_CHAOS_SETTLE_TIMEOUT='forever'"):
        operator_settings(kopf.Memo())
    given = OperatorSettings()
    assert operator_settings(kopf.Memo(settings=given)) is given  # the CLI's, as checked


def test_the_operator_process_exits_at_once_naming_the_variable() -> None:
    """The real command, as the chart's Deployment starts it: a bad value is exit 2 with one
    line on stderr, before any connection."""
    env = {**os.environ, "AIOPS_CHAOS_MAX_DURATION": "a day", "KUBECONFIG": "/nonexistent"}
    proc = subprocess.run(
        [sys.executable, "-m", "aiops.cli.main", "operator", "run", "-n", "default"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "AIOPS_CHAOS_MAX_DURATION='a day': not a duration" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- the documentation ----------------------------------------------------------------------


def test_docs_settings_md_is_generated_from_the_model() -> None:
    assert "settings.md" not in docgen.stale(DOCS.parent), (
        "docs/settings.md is stale: run `aiops docs`"
    )
    text = DOCS.read_text()
    for var in OPERATOR_VARS + [env_name(f) for f in WorkstationSettings.model_fields.values()]:
        assert f"`{var}`" in text, var
    printed = run_cli("settings")
    assert printed.exit_code == 0 and printed.output == markdown()
    assert markdown() in text  # the very table `aiops operator settings` prints


def test_a_stale_table_is_found_and_rewritten(tmp_path: Path) -> None:
    for rel in set(docgen.SECTIONS) - {"settings.md"}:  # the other generated pages, as they are
        (tmp_path / rel).write_text((DOCS.parent / rel).read_text())
    doc = tmp_path / "settings.md"
    doc.write_text(
        "# Settings\n\n<!-- generated:settings -->\n| old |\n<!-- /generated:settings -->\n\nmore\n"
    )
    assert docgen.stale(tmp_path) == ["settings.md"]
    assert docgen.write(tmp_path) == ["settings.md"]
    assert (
        doc.read_text() == f"# Settings\n\n<!-- generated:settings -->\n{markdown()}"
        "<!-- /generated:settings -->\n\nmore\n"
    )
    assert docgen.stale(tmp_path) == []


def test_no_operator_module_reads_the_environment_on_its_own() -> None:
    """Settings come from aiops.settings. What may read os.environ: the settings module, the
    test-only crash points, and code that hands the environment on to a child process."""
    allowed = {
        "settings.py",  # the one reader
        "crashpoints.py",  # test hooks, inert unless set (see aiops.settings)
        "actions/kubectl/command.py",  # kubectl's allowlisted environment, passed on
        "cluster/local.py",  # the cluster's processes inherit the environment
        "localsystem/operator_proc.py",  # starts an operator with the caller's environment
        "localsystem/system.py",  # runs hack/tools/build.sh with the caller's environment
        "demo/director.py",  # runs kubectl with the caller's environment
    }
    root = REPO / "operator" / "aiops"
    readers = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if re.search(r"os\.environ|getenv\(", p.read_text())
        and str(p.relative_to(root)) not in allowed
    )
    assert readers == [], f"read the environment outside aiops.settings: {readers}"
