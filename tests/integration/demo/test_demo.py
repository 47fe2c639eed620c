"""`aiops up | down | status` and `aiops demo` as a person uses them: the whole local system
brought up once for this module, the demo run unattended three times in a row, and the
terminal UI driven in tmux at 120x40 and 80x24, every chapter's screen checked for what it
must show; `a` makes a real Approval, `q` and Ctrl-C revert a live fault and give the
terminal back, and a small terminal is told the minimum size."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest

from tests.fixtures.demo_system import DemoSystem, Tmux, demo_command, wait_for
from tests.fixtures.scripted_anthropic import FAKE_KEY, ScriptedAnthropic, reply, tool_use

pytestmark = pytest.mark.cluster

FAST = ("--dwell", "0.3", "--countdown", "0.5")


def test_up_again_is_idempotent_and_status_names_every_component(
    demo_system: DemoSystem,
) -> None:
    again = demo_system.aiops(
        "up", "--port", str(demo_system.port), "--stack-port", str(demo_system.stack_port)
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already running" in again.stdout  # the cluster, the stack and the operator
    assert again.stdout.count("already running") >= 3, again.stdout

    proc = demo_system.aiops("status", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    components = {c["name"]: c for c in json.loads(proc.stdout)}
    for name in (
        "kube-apiserver",
        "etcd",
        "supervisord",
        "redis",
        "toxiproxy",
        "prometheus",
        "rl-node-1",
        "rl-node-2",
        "rl-node-3",
        "operator",
    ):
        c = components[name]
        assert c["state"] == "running" and c["pid"] and c["healthy"] is True, c
    assert components["kube-apiserver"]["address"] == f"https://127.0.0.1:{demo_system.port}"
    assert components["operator"]["address"].endswith("/healthz")
    assert (
        components["loadgen"]["state"] == "stopped" and components["loadgen"]["healthy"] is None
    )  # only a demo runs it
    assert components[f"Subject {demo_system.namespace}/ratelimiter"]["state"] == "Healthy"

    table = demo_system.aiops("status")
    assert re.search(
        r"operator\s+running\s+\d+\s+http://127\.0\.0\.1:\d+/healthz\s+healthy", table.stdout
    ), table.stdout


def test_up_refuses_a_busy_port_and_a_missing_tool_before_starting_anything(
    demo_system: DemoSystem,
    tmp_path: Any,
) -> None:
    other = DemoSystem(
        "demo-test-busy", tmp_path / "state", demo_system.port + 100, demo_system.stack_port
    )  # its stack ports are the running system's
    proc = other.aiops("up", "--port", str(other.port), "--stack-port", str(other.stack_port))
    assert proc.returncode == 1
    assert f"port {other.stack_port} is in use by another process" in proc.stderr, proc.stderr
    assert "--stack-port moves it" in proc.stderr
    assert not (tmp_path / "state").exists()  # nothing was started, nothing written

    env = {**other.env, "PATH": str(tmp_path)}  # no redis-server, no prometheus
    missing = subprocess_run(
        [sys.executable, "-m", "aiops.cli.main", "up", "--name", "demo-test-busy"], env
    )
    assert missing.returncode == 1
    assert "redis-server not found on PATH: apt-get install redis-server" in missing.stderr


def subprocess_run(argv: list[str], env: dict[str, str]) -> Any:
    import subprocess

    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_demo_without_a_system_and_tikv_on_the_local_path_say_what_to_run(
    demo_system: DemoSystem,
) -> None:
    proc = subprocess_run(
        [sys.executable, "-m", "aiops.cli.main", "demo", "ratelimiter", "--name", "nothing-here"],
        demo_system.env,
    )
    assert proc.returncode == 2
    assert "is not up: run 'aiops up' first" in proc.stderr

    tikv = demo_system.aiops("demo", "tikv")
    assert tikv.returncode == 2
    lines = tikv.stderr.strip().splitlines()
    assert len(lines) == 1, tikv.stderr  # one line: why, and what to run instead
    assert "hack/kind-up.sh" in lines[0] and "aiops demo ratelimiter" in lines[0]

    bad = demo_system.aiops("demo", "ratelimiter", "--fault", "melt_redis")
    assert bad.returncode == 2 and "no fault 'melt_redis'" in bad.stderr
    assert "kill_node" in bad.stderr and "counter_drift" in bad.stderr  # the real choices


def test_auto_three_runs_give_three_resolved_incidents_and_leave_nothing_running(
    demo_system: DemoSystem,
) -> None:
    incidents = []
    for run in range(3):
        proc = demo_system.aiops("demo", "ratelimiter", "--auto", *FAST, timeout=240)
        assert proc.returncode == 0, f"run {run}:\n{proc.stdout}\n{proc.stderr}"
        summary = re.search(
            r"Incident (\S+)\nResolved\s+TTD (\d+\.\d)s\s+TTR (\d+\.\d)s", proc.stdout
        )
        assert summary, proc.stdout
        name, ttd, ttr = summary[1], float(summary[2]), float(summary[3])
        assert 0 < ttd < ttr < 120, proc.stdout
        assert "approved by" in proc.stdout  # autonomy propose: --auto approved as the user
        # Resolved on the API server, not only in the demo's words.
        inc = demo_system.get("incident", name)
        assert inc["status"]["phase"] == "Resolved"
        assert inc["status"]["chaos"].startswith("demo-kill-node-")
        incidents.append(name)
        # Nothing left running: no Chaos, the load generator stopped, every node serving.
        assert demo_system.get("chaos")["items"] == []
        assert demo_system.program("loadgen") == "STOPPED"
        assert all(demo_system.program(f"rl-node-{i}") == "RUNNING" for i in (1, 2, 3))
    assert len(set(incidents)) == 3
    # Each run cleared the one before it; all three stay in the audit log, and it verifies.
    audit = demo_system.state_dir / "systems" / demo_system.name / "audit"
    for name in incidents:
        records = [
            json.loads(line)
            for line in (audit / demo_system.namespace / f"{name}.jsonl").read_text().splitlines()
        ]
        assert records[-1]["kind"] == "phase" and records[-1]["data"]["to"] == "Resolved"
    verify = subprocess_run(
        [
            sys.executable,
            "-m",
            "aiops.cli.main",
            "audit",
            "verify",
            "--audit-dir",
            str(audit),
            "--no-cluster",
        ],
        demo_system.env,
    )
    assert verify.returncode == 0, verify.stdout


def whoami(system: DemoSystem) -> str:
    proc = system.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_ui_at_120x40_shows_every_chapter_and_a_approves_as_the_kubectl_user(
    demo_system: DemoSystem,
    tmux_factory: Any,
) -> None:
    t: Tmux = tmux_factory(120, 40)
    assert t.size() == (120, 40)
    t.type(demo_command(demo_system, "--countdown", "1"))
    s = t.wait(
        "Chapter 1/10 · Healthy baseline",
        "Clean state for this run",
        "earlier incidents",
        "● rl-node-1",
        "reached by 3/3",
        "SPACE/ENTER/→ next",
    )
    assert "Subject ratelimiter: Healthy" in s and "none open" in s
    t.keys("Space")
    t.wait("Chapter 2/10 · Load", "load generator started")
    wait_for(
        "the allowed rate on screen",
        lambda: re.search(r"allowed\s+\S+\s+([1-9]\d*\.\d)/s", t.screen()),
    )
    t.keys("Space")
    t.wait("Chapter 3/10 · Countdown", "Injecting kill_node in")
    s = t.wait("Chapter 4/10 · Fault", "phase Injected", "target rl-node-2", "✗ rl-node-2")
    assert "Chaos demo-kill-node-" in s
    t.keys("Right")
    s = t.wait(
        "Chapter 5/10 · Detection",
        "DETECTED in",
        "invariant node_down",
        "entity rl-node-2",
        timeout=90,
    )
    assert re.search(r"TTD \d+\.\ds", s), s
    t.keys("Enter")
    s = t.wait("Chapter 6/10 · Diagnosis", "root cause", "runbook")
    assert "The node does not serve" in s
    t.keys("Space")
    s = t.wait(
        "Chapter 7/10 · Approval",
        "a1 restart_node",
        "risk high · dry run ok",
        "a approve · r reject",
    )
    assert "AwaitingApproval" in s and "Open → Investigating" in s  # the audit timeline
    t.keys("a")
    s = t.wait("approve sent as your kubectl user", "approved a1 of")
    inc = wait_for("the incident", lambda: next(iter(demo_system.get("incidents")["items"]), None))
    approvals = demo_system.get("approvals")["items"]
    assert len(approvals) == 1, approvals
    spec = approvals[0]["spec"]
    assert spec["approvedBy"] == whoami(demo_system)
    assert spec["decision"] == "approve" and spec["actions"] == ["a1"]
    assert spec["incident"] == inc["metadata"]["name"]
    assert spec["incidentUid"] == inc["metadata"]["uid"]
    t.wait("SPACE/ENTER/→ next")
    t.keys("Space")
    s = t.wait("Chapter 8/10 · Remediation", "a1 restart_node: Succeeded", "(approved by")
    t.keys("Space")
    t.wait("Chapter 9/10 · Verification", "Resolved", "verified: the invariant holds")
    t.keys("Space")
    s = t.wait(
        "Chapter 10/10 · Summary",
        "Resolved   TTD",
        "fault reverted (Chaos gone)",
        "load generator stopped",
    )
    assert re.search(r"TTD \d+\.\ds\s+TTR \d+\.\ds", s), s
    assert "action a1 restart_node: Succeeded, approved by" in s
    assert "runbook (no model, no tokens)" in s
    t.keys("q")
    s = t.wait("EXIT=0")
    assert not t.alternate_on()
    assert re.search(r"Resolved\s+TTD \d+\.\ds\s+TTR", s), s  # left in the scrollback


def test_the_ui_at_80x24_tells_a_fault_fixed_without_an_approval(
    demo_system: DemoSystem,
    tmux_factory: Any,
) -> None:
    t: Tmux = tmux_factory(80, 24)
    assert t.size() == (80, 24)
    t.type(
        demo_command(
            demo_system, "--fault", "counter_drift", "--autonomy", "execute", "--countdown", "1"
        )
    )
    s = t.wait(
        "Chapter 1/10 · Healthy baseline", "▶BASELINE 1/10", "rl-node-3", "SPACE/ENTER/→ next"
    )
    assert "execute" in s.splitlines()[0]
    t.keys("Space")
    t.wait("Chapter 2/10 · Load", "allowed")
    t.keys("Space")
    s = t.wait("Chapter 4/10 · Fault", "phase Injected", "target user-42")
    assert "counter_drift" in s
    t.keys("Space")
    s = t.wait(
        "Chapter 5/10 · Detection",
        "DETECTED in",
        "invariant counter_drift",
        "entity user-42",
        timeout=90,
    )
    t.keys("Space")
    t.wait("Chapter 6/10 · Diagnosis", "root cause")
    t.keys("Space")
    # autonomy execute runs the low-risk reset without a person: the approval chapter is
    # skipped, and says so in the narration (a dash instead of a tick).
    s = t.wait("Chapter 8/10 · Remediation", "a1 reset_counter: Succeeded")
    assert re.search(r"✓✓✓✓✓✓-▶REMEDIATION 8/10", s), s
    assert demo_system.get("approvals")["items"] == []
    t.keys("Space")
    t.wait("Chapter 9/10 · Verification", "Resolved")
    t.keys("Space")
    s = t.wait("Chapter 10/10 · Summary", "TTR", "load generator stopped")
    assert "approved by" not in s
    t.keys("Space")
    t.wait("EXIT=0")
    assert not t.alternate_on()


@pytest.mark.parametrize("key", ["q", "C-c"])
def test_quitting_mid_fault_reverts_it_and_restores_the_terminal(
    demo_system: DemoSystem,
    tmux_factory: Any,
    key: str,
) -> None:
    t: Tmux = tmux_factory(120, 40)
    t.type(demo_command(demo_system, "--countdown", "0.5"))
    t.wait("Chapter 1/10", "SPACE/ENTER/→ next")
    assert t.alternate_on()
    t.keys("Space")
    t.wait("Chapter 2/10 · Load", "SPACE/ENTER/→ next")
    t.keys("Space")
    t.wait("Chapter 4/10 · Fault", "✗ rl-node-2", "phase Injected")
    assert demo_system.program("rl-node-2") == "STOPPED"  # the fault is real
    t.keys(key)
    s = t.wait("EXIT=130", timeout=120)
    assert not t.alternate_on()
    assert "quit during the fault chapter" in s and "fault reverted (Chaos gone)" in s
    # The terminal is the shell's again: it echoes what is typed and runs it.
    t.type("echo AFTER-$((6*7))")
    t.wait("AFTER-42")
    # Reverted on the subject itself: the node runs and serves again, no Chaos is left.
    assert demo_system.program("rl-node-2") == "RUNNING"
    assert demo_system.get("chaos")["items"] == []
    assert demo_system.program("loadgen") == "STOPPED"

    def node_up() -> bool:
        subject = demo_system.get("subject", "ratelimiter")
        return any(
            m["name"] == "rl-node-2" and m["state"] == "Up"
            for m in subject["status"].get("members", [])
        )

    wait_for("rl-node-2 Up in the Subject", node_up)


def test_a_too_small_terminal_is_told_the_minimum_size(
    demo_system: DemoSystem,
    tmux_factory: Any,
) -> None:
    t: Tmux = tmux_factory(70, 20)
    t.type(demo_command(demo_system))
    s = t.wait("needs a terminal of at least 80x24", "this one is 70x20")
    assert "│" not in s and "Chapter" not in s  # no panels drawn into too little room
    t.tmux("resize-window", "-t", "demo", "-x", "100", "-y", "30")
    t.wait("Chapter 1/10 · Healthy baseline")
    t.keys("q")
    t.wait("EXIT=130")
    assert not t.alternate_on()


def test_with_a_model_the_demo_says_claude_and_counts_its_tokens(
    demo_system: DemoSystem,
    scripted_anthropic: ScriptedAnthropic,
) -> None:
    """ANTHROPIC_API_KEY set: `aiops up` restarts the operator for Claude (here the scripted
    Messages API, the only stand-in for the model), and the same demo says so."""
    scripted_anthropic.script(
        [
            reply(tool_use("observe_subject")),
            reply(
                tool_use(
                    "propose_action",
                    {
                        "action": "restart_node",
                        "params": {"node": "rl-node-2"},
                        "rationale": "its process is not running",
                    },
                )
            ),
            reply(tool_use("resolve", {"summary": "rl-node-2 is down: its process stopped"})),
        ]
    )
    model = {"ANTHROPIC_API_KEY": FAKE_KEY, "ANTHROPIC_BASE_URL": scripted_anthropic.base_url}
    try:
        up = demo_system.aiops(
            "up",
            "--port",
            str(demo_system.port),
            "--stack-port",
            str(demo_system.stack_port),
            env=model,
        )
        assert up.returncode == 0, up.stdout + up.stderr
        assert "restarting pid" in up.stdout and "for the anthropic agent" in up.stdout
        proc = demo_system.aiops("demo", "ratelimiter", "--auto", *FAST, env=model, timeout=240)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "agent Claude" in proc.stdout.splitlines()[0]  # the header, before anything
        assert re.search(r"model \S+: \d+ in / \d+ out tokens, \$\d+\.\d{4}", proc.stdout), (
            proc.stdout
        )
        assert "action a1 restart_node: Succeeded, approved by" in proc.stdout
        assert FAKE_KEY not in proc.stdout
    finally:
        back = demo_system.aiops(
            "up", "--port", str(demo_system.port), "--stack-port", str(demo_system.stack_port)
        )
        assert back.returncode == 0 and "for the runbook agent" in back.stdout, back.stdout


def test_down_leaves_no_process_and_no_port(demo_system: DemoSystem) -> None:
    import psutil

    pids = [c["pid"] for c in demo_system.status() if c.get("pid")]
    assert len(pids) >= 10
    proc = demo_system.aiops("down")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ports free" in proc.stdout
    alive = [
        p
        for p in pids
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == []
    ports = {
        *range(demo_system.port, demo_system.port + 6),
        *range(demo_system.stack_port, demo_system.stack_port + 11),
    }
    listening = {
        c.laddr.port for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN
    }
    assert ports & listening == set()
    again = demo_system.aiops("down")
    assert again.returncode == 0 and "not running" in again.stdout
    status = demo_system.aiops("status")
    assert status.returncode == 3 and "is not up" in status.stderr
