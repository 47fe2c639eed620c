"""The pause fault's command for pods (`aiops.subjects.faults.freeze`), run for real in a PID
namespace of its own (`unshare --pid --mount-proc`): the namespace's init is a shell standing
for the pod's pause process, a `sleep` for the container's main process, and the command is
exec'd beside them, as `kubectl exec` would. Needs root, like `unshare --pid`."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess

import pytest

from aiops.subjects.contract import PluginError
from aiops.subjects.faults import freeze

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="a PID namespace of its own needs root and unshare (util-linux)",
)


def in_pid_namespace(script: str) -> list[str]:
    """Runs `script` as the init of a new PID namespace with its own /proc; its output lines."""
    proc = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def freeze_cmd(mode: freeze.Mode) -> str:
    return shlex.join(freeze.argv(mode))


def test_stop_freezes_the_main_process_and_cont_thaws_it_and_nothing_else() -> None:
    # The main process' state once it is what `want` says (a signal lands at once, but on a
    # loaded machine the process may not have run since), or as it is after 5 s.
    state = """for i in $(seq 50); do
          while read -r k v; do [ "$k" = State: ] && s=$v; done < /proc/$main/status
          case $s in {want}*) break ;; esac; sleep 0.1
        done; echo "state $s"
    """
    lines = in_pid_namespace(
        f"""
        sleep 300 & main=$!
        echo "main $main"
        echo "stop: $({freeze_cmd("stop")})"
        {state.format(want="T")}
        echo "list: $({freeze_cmd("list")})"
        echo "cont: $({freeze_cmd("cont")})"
        {state.format(want="S")}
        echo "again: $({freeze_cmd("cont")})"
        kill $main
        """
    )
    (main,) = [line.split()[1] for line in lines if line.startswith("main ")]
    said = {line.partition(": ")[0]: line.partition(": ")[2] for line in lines}
    # Only the main process: not the init (pid 1), not the command itself.
    assert set(freeze.parse(said["stop"])) == {int(main)}
    states = [line for line in lines if line.startswith("state ")]
    assert states[0].startswith("state T"), lines  # stopped
    assert freeze.stopped(freeze.parse(said["list"]))
    assert freeze.parse(said["cont"]) == {int(main): "T"}  # the stopped one, thawed
    assert states[1].startswith("state S"), lines
    assert said["again"] == ""  # nothing stopped: nothing to resume


def test_a_main_process_that_is_the_init_is_not_found() -> None:
    # No shared process namespace: the command runs beside the init only, and skips it.
    lines = in_pid_namespace(f'echo "stop: $({freeze_cmd("stop")})"')
    assert lines == ["stop: "]


def test_output_that_is_not_pids_is_refused() -> None:
    with pytest.raises(PluginError, match="unexpected output"):
        freeze.parse("sh: 1: read: /proc/7/cgroup: Permission denied")
    assert not freeze.stopped({})
