"""The demo as a user runs it: `aiops up` once for the module (its own cluster, stack and
operator, on free ports, in a state directory of its own; `aiops down` at the end), the demo
as a subprocess, and the terminal UI driven in tmux (send-keys, capture-pane).

The system is the product's own: its cluster is started and stopped by `aiops up|down` under a
name and port no other test uses, so nothing here touches the session's cluster.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ratelimiter.localstack import PORT_SPAN, find_free_base
from ratelimiter.localstack.ports import port_is_free
from tests.fixtures import polling

REPO = Path(__file__).resolve().parents[3]


def free_cluster_port() -> int:
    """A base with its 6 control plane ports free, away from the fixtures' 16443-16470."""
    for base in range(16600, 17400, 10):
        if all(port_is_free(base + i) for i in range(6)):
            return base
    raise RuntimeError("no free span of 6 ports in 16600..17400")


def free_stack_port() -> int:
    """A stack base whose span and the operator's port after it are free."""
    for _ in range(50):
        base = find_free_base(30000, 40000)
        if port_is_free(base + PORT_SPAN):
            return base
    raise RuntimeError("no free stack span")


@dataclass
class DemoSystem:
    name: str
    state_dir: Path
    port: int
    stack_port: int

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "AIOPS_STATE_DIR": str(self.state_dir)}
        env.pop("ANTHROPIC_API_KEY", None)  # the runbook investigates in these tests
        return env

    def aiops(
        self, *args: str, timeout: float = 300, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aiops.cli.main", *args, *self.name_args(args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **(env or {})},
            check=False,
        )

    def name_args(self, args: tuple[str, ...]) -> list[str]:
        return ["--name", self.name] if args and args[0] in ("up", "down", "status", "demo") else []

    @property
    def record(self) -> dict[str, Any]:
        path = self.state_dir / "systems" / self.name / "system.json"
        return dict(json.loads(path.read_text()))

    @property
    def kubeconfig(self) -> str:
        return str(self.record["kubeconfig"])

    @property
    def namespace(self) -> str:
        return str(self.record["layout"]["namespace"])

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        from aiops.cluster.tools import tools_bin_dir

        return subprocess.run(
            [str(tools_bin_dir(build=False) / "kubectl"), "--kubeconfig", self.kubeconfig, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def get(self, *args: str) -> dict[str, Any]:
        proc = self.kubectl("get", "-n", self.namespace, *args, "-o", "json")
        assert proc.returncode == 0, proc.stderr
        return dict(json.loads(proc.stdout))

    def program(self, name: str) -> str:
        import xmlrpc.client

        rpc: Any = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.stack_port}/RPC2")
        return str(rpc.supervisor.getProcessInfo(name)["statename"])

    def status(self) -> list[dict[str, Any]]:
        proc = self.aiops("status", "--json")
        return list(json.loads(proc.stdout))


@pytest.fixture(scope="module")
def demo_system() -> Iterator[DemoSystem]:
    # Not under pytest's basetemp: another pytest session on this machine rotates those away,
    # records and all, while this one still runs.
    state = Path(tempfile.mkdtemp(prefix="aiops-demo-test-"))
    system = DemoSystem(
        f"demo-test-{uuid.uuid4().hex[:6]}", state, free_cluster_port(), free_stack_port()
    )
    proc = system.aiops("up", "--port", str(system.port), "--stack-port", str(system.stack_port))
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield system
    finally:
        down = system.aiops("down")  # idempotent: the last test already brought it down
        assert down.returncode == 0, down.stdout + down.stderr
        shutil.rmtree(state, ignore_errors=True)


def wait_for(what: str, probe: Any, timeout: float = 60) -> Any:
    return polling.wait_for(what, probe, timeout, every=0.3)


class Tmux:
    """One tmux server of the test's own (its own socket), one window of a fixed size."""

    def __init__(self, width: int, height: int, env: dict[str, str]) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is not installed: hack/setup.sh installs it (apt-get install tmux)")
        self.socket = f"aiops-demo-{uuid.uuid4().hex[:8]}"
        self.env = env
        self.tmux(
            "new-session",
            "-d",
            "-s",
            "demo",
            "-x",
            str(width),
            "-y",
            str(height),
            "bash --norc --noprofile",
        )
        self.tmux("set-option", "-g", "status", "off")
        self.tmux("resize-window", "-t", "demo", "-x", str(width), "-y", str(height))

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 0, f"tmux {args[0]}: {proc.stderr}"
        return proc.stdout

    def type(self, line: str) -> None:
        self.tmux("send-keys", "-t", "demo", "-l", line)
        self.tmux("send-keys", "-t", "demo", "Enter")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "demo", *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "demo")

    def size(self) -> tuple[int, int]:
        w, h = self.tmux("display", "-p", "-t", "demo", "#{pane_width} #{pane_height}").split()
        return int(w), int(h)

    def alternate_on(self) -> bool:
        return self.tmux("display", "-p", "-t", "demo", "#{alternate_on}").strip() == "1"

    def wait(self, *texts: str, timeout: float = 60) -> str:
        """The screen once it shows every one of `texts`."""
        last = [""]

        def shows() -> str | None:
            last[0] = self.screen()
            return last[0] if all(t in last[0] for t in texts) else None

        try:
            return str(wait_for(f"the screen to show {texts}", shows, timeout))
        except AssertionError as err:
            raise AssertionError(f"{err}\n--- last screen ---\n{last[0]}") from None

    def close(self) -> None:
        """A demo still running (a failed test) is quit first, so that it reverts its fault
        before the next test starts; then this tmux server goes."""
        try:
            if not re.search(r"EXIT=\d+", self.screen()):
                self.keys("q")
                wait_for("the demo to exit", lambda: re.search(r"EXIT=\d+", self.screen()), 120)
        except AssertionError:
            pass
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30, check=False
        )


@pytest.fixture
def tmux_factory(demo_system: DemoSystem) -> Iterator[Any]:
    opened: list[Tmux] = []

    def make(width: int, height: int) -> Tmux:
        t = Tmux(width, height, demo_system.env)
        opened.append(t)
        return t

    yield make
    for t in opened:
        t.close()


def demo_command(system: DemoSystem, *options: str) -> str:
    """The demo as typed in the terminal, followed by its exit code on a line of its own."""
    argv = [
        sys.executable,
        "-m",
        "aiops.cli.main",
        "demo",
        "ratelimiter",
        "--name",
        system.name,
        *options,
    ]
    return f"{' '.join(argv)}; echo EXIT=$?"
