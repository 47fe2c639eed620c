"""A command run in a pod's container (the exec API, as `kubectl exec`): how the faults that
act inside a member (a disk filled, delay added by tc) reach a pod.

The kubernetes client's `stream` swaps the transport of the ApiClient it is given while it
runs, so exec gets an ApiClient of its own, never the one other calls share."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from aiops.subjects.contract import PluginError

EXEC_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ExecResult:
    rc: int
    stdout: str
    stderr: str

    def why(self) -> str:
        """A failed command's own words, bounded."""
        text = " ".join((self.stderr.strip() or self.stdout.strip() or "(no output)").split())
        return text[:300]


def exit_status(error_channel: str) -> tuple[int, str]:
    """The exit status from the exec API's error channel (a metav1.Status as YAML/JSON), and
    the API server's words when the command did not run: (0, "") on Success, the
    NonZeroExitCode cause's code otherwise, -1 with the Status message when it names none
    (no such container, no exec on the node, the command could not start)."""
    if not error_channel.strip():
        return 0, ""
    try:
        status = yaml.safe_load(error_channel)
    except yaml.YAMLError:
        return -1, error_channel.strip()[:300]
    if not isinstance(status, dict) or status.get("status") == "Success":
        return 0, ""
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", "-1")), ""
            except ValueError:
                break
    return -1, str(status.get("message") or status.get("reason") or "exec failed")[:300]


class PodExec:
    def __init__(self, configuration: Any) -> None:
        self.configuration = configuration

    def _run(
        self, namespace: str, pod: str, argv: list[str], container: str | None, timeout: float
    ) -> ExecResult:
        api = k8s.CoreV1Api(k8s.ApiClient(self.configuration))
        kwargs: dict[str, Any] = {"container": container} if container else {}
        try:
            resp = stream(
                api.connect_get_namespaced_pod_exec,
                pod,
                namespace,
                command=argv,
                stdin=False,
                stdout=True,
                stderr=True,
                tty=False,
                _preload_content=False,
                **kwargs,
            )
        except ApiException as err:
            raise PluginError(
                f"exec in pod {namespace}/{pod} refused: HTTP {err.status} {err.reason}"
            ) from err
        out: list[str] = []
        err_: list[str] = []
        deadline = time.monotonic() + timeout
        try:
            while resp.is_open():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PluginError(
                        f"{argv[0]} in pod {namespace}/{pod} still running "
                        f"after {timeout:.0f} s: given up"
                    )
                resp.update(timeout=min(left, 1.0))
                if resp.peek_stdout():
                    out.append(resp.read_stdout())
                if resp.peek_stderr():
                    err_.append(resp.read_stderr())
            out.append(resp.read_stdout() if resp.peek_stdout() else "")
            err_.append(resp.read_stderr() if resp.peek_stderr() else "")
            rc, why = exit_status(resp.read_channel(3))
        finally:
            resp.close()
        return ExecResult(rc, "".join(out), "".join(err_) or why)

    async def run(
        self,
        namespace: str,
        pod: str,
        argv: list[str],
        container: str | None = None,
        limit_s: float = EXEC_TIMEOUT_S,
    ) -> ExecResult:
        """Runs `argv` and waits for it, at most `limit_s` (the thread enforces it: a
        cancelled await would leave the websocket running)."""
        return await asyncio.to_thread(self._run, namespace, pod, argv, container, limit_s)
