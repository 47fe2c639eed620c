"""Where a subject's processes run, and how to restart, stop and start one member.

Two kinds, chosen by `Subject.spec.workload.kind`:
- `pods`: members are pods found by a label selector; restart = delete the pod (its controller
  makes a new one). Used in a real cluster (kind).
- `supervisor`: members are programs of a supervisord (XML-RPC); restart = stop then start.
  Used on a workstation and in the local tests, where pods are only simulated.

Both also carry the member faults a Chaos injects (kill, pause, partition, disk fill, a command
run in the member), each undone by its pair (start, resume, heal, unfill) from the member's
name alone, and saying so plainly where a kind cannot do one (no NetworkPolicy between local
processes; no SIGSTOP for a container's main process from inside a pod that does not share
its process namespace).
"""

from __future__ import annotations

import asyncio
import xmlrpc.client
from pathlib import Path
from typing import Any, Protocol

from aiops.subjects.contract import INSTANT, ActionResult, PluginError
from aiops.subjects.faults import diskfill, freeze
from aiops.subjects.faults.diskfill import FillParams
from aiops.subjects.faults.netpolicy import Direction, Partitions
from aiops.subjects.faults.podexec import ExecResult, PodExec


class Workload(Protocol):
    async def restart(self, member: str) -> ActionResult: ...
    async def stop(self, member: str) -> ActionResult: ...
    async def start(self, member: str) -> ActionResult: ...
    async def running(self, member: str) -> bool: ...

    # Faults. kill's result carries detail INSTANT where the member comes back by itself.
    async def kill(self, member: str) -> ActionResult: ...
    async def pause(self, member: str) -> ActionResult: ...
    async def resume(self, member: str) -> ActionResult: ...
    async def partition(self, member: str, name: str, direction: Direction) -> ActionResult: ...
    async def heal(self, member: str, name: str) -> ActionResult: ...
    async def fill_disk(
        self, member: str, directory: str, params: FillParams, container: str | None = None
    ) -> ActionResult: ...
    async def unfill_disk(
        self, member: str, directory: str, container: str | None = None
    ) -> ActionResult: ...
    async def exec(
        self, member: str, argv: list[str], container: str | None = None
    ) -> ExecResult: ...


def _proc_state(pid: int) -> str | None:
    """The kernel's state letter of a local process (T: stopped by a signal); None when it
    cannot be read. supervisord is always local, so its programs' pids are ours to read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = stat.rpartition(")")[2].split()
    return rest[0] if rest else None


_ALIVE = ("RUNNING", "STARTING", "BACKOFF")


class SupervisorWorkload:
    """A supervisord reached over XML-RPC; `programs` maps member names to program names
    (a member not in the map is its own program name)."""

    def __init__(self, url: str, programs: dict[str, str] | None = None) -> None:
        self.url = url
        self.programs = programs or {}

    def _program(self, member: str) -> str:
        return self.programs.get(member, member)

    async def _call(self, method: str, *args: Any, tolerate: str = "") -> Any:
        """`tolerate`: a fault (ALREADY_STARTED, NOT_RUNNING) that means it is done already."""

        def call() -> Any:
            # A proxy per call: ServerProxy is not thread-safe and calls are rare.
            proxy = xmlrpc.client.ServerProxy(self.url)
            return getattr(proxy.supervisor, method)(*args)

        try:
            return await asyncio.wait_for(asyncio.to_thread(call), timeout=30)
        except xmlrpc.client.Fault as fault:
            if tolerate and fault.faultString.startswith(tolerate):
                return None
            raise PluginError(
                f"supervisord {method}({', '.join(map(str, args))}): {fault.faultString}"
            ) from fault
        except (OSError, TimeoutError) as err:
            raise PluginError(f"supervisord at {self.url} unreachable: {err}") from err

    async def running(self, member: str) -> bool:
        info = await self._call("getProcessInfo", self._program(member))
        return bool(info.get("statename") == "RUNNING")

    async def _state(self, member: str) -> str:
        info = await self._call("getProcessInfo", self._program(member))
        return str(info.get("statename"))

    async def stop(self, member: str) -> ActionResult:
        program = self._program(member)
        info, proc = await self._paused(member)
        state = str(info.get("statename"))
        # A program still STARTING (or in BACKOFF) is stopped too: "not RUNNING yet" is not
        # "stopped", and a start right after must not find it half-up.
        if state not in _ALIVE:
            return ActionResult(ok=True, message=f"program {program} was {state}: not running")
        if proc == "T":
            # Paused by a fault: supervisord's SIGTERM would wait, pending, for stopwaitsecs
            # and end in SIGKILL. Thawed first, it shuts down as usual.
            await self._call("signalProcess", program, "CONT", tolerate="NOT_RUNNING")
        await self._call("stopProcess", program, True, tolerate="NOT_RUNNING")
        return ActionResult(ok=True, message=f"program {program} stopped")

    async def start(self, member: str) -> ActionResult:
        program = self._program(member)
        if await self._state(member) == "RUNNING":
            return ActionResult(ok=True, message=f"program {program} was running already")
        # STARTING already: startProcess waits for nothing and says ALREADY_STARTED.
        await self._call("startProcess", program, True, tolerate="ALREADY_STARTED")
        return ActionResult(ok=True, message=f"program {program} started")

    async def restart(self, member: str) -> ActionResult:
        await self.stop(member)
        await self.start(member)
        return ActionResult(ok=True, message=f"program {self._program(member)} restarted")

    # -- faults ----------------------------------------------------------------------------

    async def kill(self, member: str) -> ActionResult:
        # Nothing brings a stopped program back here: it holds until `start`.
        return await self.stop(member)

    async def _paused(self, member: str) -> tuple[dict[str, Any], str | None]:
        info = await self._call("getProcessInfo", self._program(member))
        pid = int(info.get("pid") or 0)
        return info, (_proc_state(pid) if pid else None)

    async def pause(self, member: str) -> ActionResult:
        program = self._program(member)
        info, state = await self._paused(member)
        # STARTING counts: the process is up (supervisord calls it RUNNING after startsecs).
        if info.get("statename") not in ("RUNNING", "STARTING") or not info.get("pid"):
            raise PluginError(
                f"program {program} is {info.get('statename')}: only a running "
                "program can be paused"
            )
        if state != "T":
            await self._call("signalProcess", program, "STOP")
        for _ in range(20):  # the kernel stops it at once; the check is only to say so
            _, state = await self._paused(member)
            if state in ("T", None):
                break
            await asyncio.sleep(0.05)
        return ActionResult(
            ok=True,
            message=f"program {program} (pid {info.get('pid')}) "
            "stopped by SIGSTOP: it keeps its sockets and answers nothing",
        )

    async def resume(self, member: str) -> ActionResult:
        program = self._program(member)
        info, state = await self._paused(member)
        if info.get("statename") not in _ALIVE or not info.get("pid"):
            return ActionResult(
                ok=True, message=f"program {program} is {info.get('statename')}: nothing to resume"
            )
        if state not in ("T", "t", None):
            return ActionResult(ok=True, message=f"program {program} was not paused")
        await self._call("signalProcess", program, "CONT")
        return ActionResult(ok=True, message=f"program {program} resumed by SIGCONT")

    async def partition(self, member: str, name: str, direction: Direction) -> ActionResult:
        raise PluginError(
            f"{member} is a local process under supervisord: a partition is a NetworkPolicy "
            "between pods and needs a pods workload (cut a path through toxiproxy instead)"
        )

    async def heal(self, member: str, name: str) -> ActionResult:
        return ActionResult(
            ok=True, message=f"{member} runs under supervisord, where there is no partition to heal"
        )

    async def fill_disk(
        self, member: str, directory: str, params: FillParams, container: str | None = None
    ) -> ActionResult:
        await self._call("getProcessInfo", self._program(member))  # a member of ours at all
        return await diskfill.fill_local(directory, params)

    async def unfill_disk(
        self, member: str, directory: str, container: str | None = None
    ) -> ActionResult:
        # No supervisord call: the file is local, and removing it must work without it.
        return await diskfill.unfill_local(directory)

    async def exec(self, member: str, argv: list[str], container: str | None = None) -> ExecResult:
        raise PluginError(
            f"{member} is a local process under supervisord: there is no "
            "container to run a command in (this fault needs a pods workload)"
        )


class PodsWorkload:
    """Pods by label selector in one namespace; a member is a pod name."""

    def __init__(self, namespace: str, selector: dict[str, str], core_v1: Any) -> None:
        self.namespace = namespace
        self.selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        self.core_v1 = core_v1
        self.partitions = Partitions(core_v1.api_client, namespace)
        self.podexec = PodExec(core_v1.api_client.configuration)

    async def _pod(self, member: str) -> Any | None:
        """The pod named `member` among those the selector matches, or None."""
        pods = await asyncio.to_thread(
            self.core_v1.list_namespaced_pod, self.namespace, label_selector=self.selector
        )
        return next((p for p in pods.items if p.metadata.name == member), None)

    async def running(self, member: str) -> bool:
        return await self._pod(member) is not None

    async def _ours(self, member: str) -> Any:
        pod = await self._pod(member)
        if pod is None:
            raise PluginError(
                f"no pod {member!r} matches {self.selector} in namespace {self.namespace}"
            )
        return pod

    async def restart(self, member: str) -> ActionResult:
        await self._ours(member)
        await asyncio.to_thread(self.core_v1.delete_namespaced_pod, member, self.namespace)
        return ActionResult(ok=True, message=f"pod {self.namespace}/{member} deleted")

    async def stop(self, member: str) -> ActionResult:
        # A pod under a controller comes back by design; stopping one is a restart.
        return await self.restart(member)

    async def start(self, member: str) -> ActionResult:
        return ActionResult(ok=True, message=f"pod {member} is managed by its controller")

    # -- faults ----------------------------------------------------------------------------

    async def kill(self, member: str) -> ActionResult:
        # Over as soon as made: the controller makes a new pod, and nothing is left to revert.
        done = await self.restart(member)
        return ActionResult(
            ok=True, message=f"{done.message}; its controller replaces it", detail={INSTANT: True}
        )

    async def _freeze(self, member: str, mode: freeze.Mode) -> dict[int, str]:
        return freeze.parse(await self._sh(member, freeze.argv(mode), None))

    async def pause(self, member: str) -> ActionResult:
        where = f"pod {self.namespace}/{member}"
        pod = await self._ours(member)
        if not getattr(pod.spec, "share_process_namespace", None):
            raise PluginError(freeze.not_shared(f"{self.namespace}/{member}"))
        signalled = await self._freeze(member, "stop")
        if not signalled:
            raise PluginError(f"{where}: its container runs no process to pause")
        # The kernel stops them at once; the check is only to say so, and to refuse a
        # container whose processes did not stop.
        states: dict[int, str] = {}
        for _ in range(20):
            now = await self._freeze(member, "list")
            states = {pid: now.get(pid, "T") for pid in signalled}  # gone counts as stopped
            if freeze.stopped(states):
                pids = ", ".join(map(str, sorted(signalled)))
                return ActionResult(
                    ok=True,
                    message=f"{where}: its container's processes (pids {pids}) stopped by "
                    "SIGSTOP: they keep their sockets and answer nothing",
                )
            await asyncio.sleep(0.1)
        raise PluginError(f"{where}: its processes did not stop on SIGSTOP: states {states}")

    async def resume(self, member: str) -> ActionResult:
        # From the pod alone, as any revert: a pod replaced since (same name, new container)
        # has nothing stopped, and says so.
        where = f"pod {self.namespace}/{member}"
        pod = await self._pod(member)
        if pod is None:
            return ActionResult(ok=True, message=f"{where} is gone: nothing to resume")
        if not getattr(pod.spec, "share_process_namespace", None):
            return ActionResult(
                ok=True,
                message=f"{where} shares no process namespace: it was never paused, "
                "nothing to resume",
            )
        if (pod.status.phase if pod.status else None) != "Running":
            return ActionResult(ok=True, message=f"{where} is not running: nothing to resume")
        stopped = sorted(await self._freeze(member, "cont"))  # only the stopped ones
        if not stopped:
            return ActionResult(ok=True, message=f"{where} was not paused: nothing to resume")
        return ActionResult(
            ok=True,
            message=f"{where}: pids {', '.join(map(str, stopped))} resumed by SIGCONT",
        )

    async def partition(self, member: str, name: str, direction: Direction) -> ActionResult:
        await self._ours(member)
        return await self.partitions.isolate(member, name, direction)

    async def heal(self, member: str, name: str) -> ActionResult:
        # No selector check: the pod may be gone or relabelled; the policy goes regardless.
        return await self.partitions.heal(member, name)

    async def exec(self, member: str, argv: list[str], container: str | None = None) -> ExecResult:
        return await self.podexec.run(self.namespace, member, argv, container)

    async def _sh(self, member: str, argv: list[str], container: str | None) -> str:
        done = await self.exec(member, argv, container)
        if done.rc != 0:
            raise PluginError(
                f"{argv[0]} in pod {self.namespace}/{member} failed (exit {done.rc}): {done.why()}"
            )
        return done.stdout

    async def fill_disk(
        self, member: str, directory: str, params: FillParams, container: str | None = None
    ) -> ActionResult:
        await self._ours(member)
        await self._sh(member, diskfill.clear_argv(directory), container)
        usage = diskfill.parse_df(await self._sh(member, diskfill.df_argv(directory), container))
        if params.capacity_bytes is not None:
            held = diskfill.parse_du(await self._sh(member, diskfill.du_argv(directory), container))
            usage = diskfill.Usage(used=held, size=params.capacity_bytes, available=usage.available)
        where = f"{directory} in pod {self.namespace}/{member}"
        nbytes = diskfill.plan(usage, params, where)
        if nbytes == 0:
            return ActionResult(
                ok=True,
                message=f"{where} is {usage.percent():.0f}% full "
                f"already, at or over the {params.percent}% asked: nothing "
                "written",
            )
        await self._sh(member, diskfill.fill_argv(directory, nbytes), container)
        return ActionResult(
            ok=True,
            message=f"wrote {directory}/{diskfill.FILL_FILE} "
            f"({diskfill.human(nbytes)}) in pod {self.namespace}/{member}: "
            f"{params.percent}% full (was {usage.percent():.0f}%)",
        )

    async def unfill_disk(
        self, member: str, directory: str, container: str | None = None
    ) -> ActionResult:
        # The file is on the pod's volume, which outlives the pod: a pod that is not there
        # fails the revert, which is retried until it is back.
        out = await self._sh(member, diskfill.clear_argv(directory), container)
        path = f"{directory}/{diskfill.FILL_FILE}"
        return ActionResult(
            ok=True,
            message=f"removed {path} in pod {self.namespace}/{member}"
            if out.strip() == "removed"
            else f"no {path} in pod {self.namespace}/{member}: nothing to remove",
        )
