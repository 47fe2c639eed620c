"""Where a subject's processes run, and how to restart, stop and start one member.

Two kinds, chosen by `Subject.spec.workload.kind`:
- `pods`: members are pods found by a label selector; restart = delete the pod (its controller
  makes a new one). Used in a real cluster (kind).
- `supervisor`: members are programs of a supervisord (XML-RPC); restart = stop then start.
  Used on a workstation and in the local tests, where pods are only simulated.
"""

from __future__ import annotations

import asyncio
import xmlrpc.client
from typing import Any, Protocol

from aiops.subjects.contract import ActionResult, PluginError


class Workload(Protocol):
    async def restart(self, member: str) -> ActionResult: ...
    async def stop(self, member: str) -> ActionResult: ...
    async def start(self, member: str) -> ActionResult: ...
    async def running(self, member: str) -> bool: ...


class SupervisorWorkload:
    """A supervisord reached over XML-RPC; `programs` maps member names to program names
    (a member not in the map is its own program name)."""

    def __init__(self, url: str, programs: dict[str, str] | None = None) -> None:
        self.url = url
        self.programs = programs or {}

    def _program(self, member: str) -> str:
        return self.programs.get(member, member)

    async def _call(self, method: str, *args: Any) -> Any:
        def call() -> Any:
            # A proxy per call: ServerProxy is not thread-safe and calls are rare.
            proxy = xmlrpc.client.ServerProxy(self.url)
            return getattr(proxy.supervisor, method)(*args)

        try:
            return await asyncio.wait_for(asyncio.to_thread(call), timeout=30)
        except xmlrpc.client.Fault as fault:
            raise PluginError(f"supervisord {method}({', '.join(map(str, args))}): "
                              f"{fault.faultString}") from fault
        except (OSError, TimeoutError) as err:
            raise PluginError(f"supervisord at {self.url} unreachable: {err}") from err

    async def running(self, member: str) -> bool:
        info = await self._call("getProcessInfo", self._program(member))
        return bool(info.get("statename") == "RUNNING")

    async def stop(self, member: str) -> ActionResult:
        program = self._program(member)
        if await self.running(member):
            await self._call("stopProcess", program, True)
        return ActionResult(ok=True, message=f"program {program} stopped")

    async def start(self, member: str) -> ActionResult:
        program = self._program(member)
        if not await self.running(member):
            await self._call("startProcess", program, True)
        return ActionResult(ok=True, message=f"program {program} started")

    async def restart(self, member: str) -> ActionResult:
        await self.stop(member)
        await self.start(member)
        return ActionResult(ok=True, message=f"program {self._program(member)} restarted")


class PodsWorkload:
    """Pods by label selector in one namespace; a member is a pod name."""

    def __init__(self, namespace: str, selector: dict[str, str], core_v1: Any) -> None:
        self.namespace = namespace
        self.selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        self.core_v1 = core_v1

    async def _pod_names(self) -> list[str]:
        pods = await asyncio.to_thread(
            self.core_v1.list_namespaced_pod, self.namespace, label_selector=self.selector
        )
        return [p.metadata.name for p in pods.items]

    async def running(self, member: str) -> bool:
        return member in await self._pod_names()

    async def restart(self, member: str) -> ActionResult:
        if member not in await self._pod_names():
            raise PluginError(
                f"no pod {member!r} matches {self.selector} in namespace {self.namespace}"
            )
        await asyncio.to_thread(self.core_v1.delete_namespaced_pod, member, self.namespace)
        return ActionResult(ok=True, message=f"pod {self.namespace}/{member} deleted")

    async def stop(self, member: str) -> ActionResult:
        # A pod under a controller comes back by design; stopping one is a restart.
        return await self.restart(member)

    async def start(self, member: str) -> ActionResult:
        return ActionResult(ok=True, message=f"pod {member} is managed by its controller")
