"""A pod's container frozen with SIGSTOP from inside the pod, and thawed with SIGCONT: the pause
fault of a pods workload.

A container's main process is normally the init of its PID namespace, and an init ignores
SIGSTOP sent from inside that namespace. A pod with `spec.shareProcessNamespace: true` has the
pod's pause process as init instead, so a command exec'd into the container can stop the
container's own processes. The command finds them by their cgroup (the first line of
/proc/PID/cgroup: the exec'd shell runs in the container's cgroup, other containers of the
pod and the pause process do not) and uses shell builtins only (`read`, `kill`), so that it
forks nothing it could stop by mistake.

`argv(mode)` builds the command (POSIX sh; modes `stop`, `cont`, `list`), `parse` reads what it
prints: one `PID STATE` line per process of the container (STATE is the kernel's letter, T
for stopped), after the signal for `stop` and `cont`.
"""

from __future__ import annotations

from typing import Literal

from aiops.subjects.contract import PluginError

Mode = Literal["stop", "cont", "list"]

# $1: the mode. Skips pid 1 (the pod's init) and itself. `cont` signals only the stopped ones.
_SCRIPT = r"""
mode=$1; me=$$
read -r mine < /proc/$me/cgroup || exit 3
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  if [ "$p" = 1 ] || [ "$p" = "$me" ]; then continue; fi
  read -r theirs < "$d/cgroup" 2>/dev/null || continue
  [ "$theirs" = "$mine" ] || continue
  state=?
  while read -r key value; do
    if [ "$key" = State: ]; then state=${value%% *}; break; fi
  done < "$d/status" 2>/dev/null
  case $mode in
    stop) kill -s STOP "$p" 2>/dev/null || continue ;;
    cont) case $state in T*|t*) kill -s CONT "$p" 2>/dev/null || continue ;; *) continue ;; esac ;;
  esac
  echo "$p $state"
done
"""


def argv(mode: Mode) -> list[str]:
    return ["sh", "-c", _SCRIPT, "aiops-freeze", mode]


def parse(out: str) -> dict[int, str]:
    """pid -> state letter, from the command's output (the state read *before* the signal)."""
    found: dict[int, str] = {}
    for line in out.splitlines():
        pid, _, state = line.strip().partition(" ")
        if not pid.isdigit():
            raise PluginError(f"unexpected output from the freeze command: {line[:120]!r}")
        found[int(pid)] = state[:1] or "?"
    return found


def stopped(states: dict[int, str]) -> bool:
    return bool(states) and all(s in ("T", "t") for s in states.values())


def not_shared(pod: str) -> str:
    """Why a pod without a shared process namespace cannot be paused, and what to change."""
    return (
        f"pausing pod {pod} needs spec.shareProcessNamespace: true: without it the container's "
        "main process is the init of its PID namespace, which ignores SIGSTOP sent from inside "
        "the pod (the ratelimiter chart shares it; set it in your pod template)"
    )
