"""Starting, inspecting and stopping one local stack under a daemonized supervisord."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ratelimiter.localstack import tools
from ratelimiter.localstack.ports import HOST, MAX_NODES, busy_ports
from ratelimiter.localstack.render import (
    PROXY_NAME,
    StackSpec,
    prometheus_yml,
    supervisord_conf,
    toxiproxy_json,
)

SPEC_FILE = "stack.json"
PIDS_FILE = "pids.json"
CORE_PROGRAMS = ("redis", "toxiproxy", "prometheus")


class StackError(RuntimeError):
    """Starting or stopping failed; the message is one line a user can act on."""


@dataclass(frozen=True)
class StackUrls:
    supervisor: str  # XML-RPC: f"{supervisor}/RPC2"
    redis: str  # Redis itself (bypasses toxiproxy: for tests and inspection)
    redis_proxy: str  # what the nodes use: Redis through toxiproxy
    toxiproxy: str  # toxiproxy's REST API
    prometheus: str
    nodes: dict[str, str]  # program name -> base URL


class _Transport(xmlrpc.client.Transport):
    """XML-RPC with a timeout: a hung supervisord must not hang the caller."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


def _http_status(url: str, timeout: float = 1.0) -> int | None:
    host_port = url.split("://", 1)[1].split("/", 1)
    host, _, port = host_port[0].partition(":")
    path = "/" + (host_port[1] if len(host_port) > 1 else "")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def _redis_pings(port: int, timeout: float = 1.0) -> bool:
    import socket

    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _wait(what: str, ready: Callable[[], bool], deadline: float, hint: str = "") -> None:
    while not ready():
        if time.monotonic() > deadline:
            raise StackError(f"timed out waiting for {what}{hint}")
        time.sleep(0.1)


def _alive(pid: int, create_time: float | None = None) -> bool:
    """Is `pid` still the process we started (not a later one reusing the number)?"""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(proc.create_time() - create_time) < 0.05
    except psutil.NoSuchProcess:
        return False


class LocalStack:
    """One stack in `directory`, all ports derived from `base_port`.

    Python API for tests and the operator; `ratelimiter-stack` is its CLI.
    """

    def __init__(
        self,
        directory: Path | str,
        base_port: int,
        *,
        nodes: int = MAX_NODES,
        scrape_interval_s: float = 2.0,
        heartbeat_interval_s: float = 1.0,
        node_ttl_s: float = 5.0,
        default_limit: int = 100,
        default_window_ms: int = 1000,
        autorestart: bool = False,
        loadgen_rps: float = 50.0,
        loadgen_keys: int = 100,
    ) -> None:
        self.directory = Path(directory).resolve()
        self._options = dict(
            base_port=base_port,
            nodes=nodes,
            scrape_interval_s=scrape_interval_s,
            heartbeat_interval_s=heartbeat_interval_s,
            node_ttl_s=node_ttl_s,
            default_limit=default_limit,
            default_window_ms=default_window_ms,
            autorestart=autorestart,
            loadgen_rps=loadgen_rps,
            loadgen_keys=loadgen_keys,
        )
        self._spec: StackSpec | None = None

    @classmethod
    def existing(cls, directory: Path | str) -> LocalStack:
        """The stack last brought up in `directory` (from its stack.json)."""
        spec = _load_spec(Path(directory).resolve())
        if spec is None:
            raise StackError(f"no stack in {directory} (no {SPEC_FILE})")
        stack = cls(spec.directory, spec.base_port)
        stack._spec = spec
        return stack

    # Layout ------------------------------------------------------------------------------

    @property
    def spec(self) -> StackSpec:
        if self._spec is None:
            self._spec = StackSpec(
                directory=self.directory,
                python=Path(sys.executable),
                redis_server=tools.redis_server(),
                toxiproxy_server=tools.toxiproxy_server(),
                prometheus=tools.prometheus(),
                **self._options,
            )
        return self._spec

    @property
    def urls(self) -> StackUrls:
        spec = self.spec
        p = spec.ports
        return StackUrls(
            supervisor=f"http://{HOST}:{p.supervisor}",
            redis=f"redis://{HOST}:{p.redis}/0",
            redis_proxy=f"redis://{HOST}:{p.redis_proxy}/0",
            toxiproxy=f"http://{HOST}:{p.toxiproxy}",
            prometheus=f"http://{HOST}:{p.prometheus}",
            nodes={name: spec.node_url(i) for i, name in enumerate(spec.node_names(), 1)},
        )

    @property
    def programs(self) -> list[str]:
        """Programs `up` starts (loadgen is there too, but only started on request)."""
        return ["redis", "toxiproxy", *self.spec.node_names(), "prometheus"]

    def rpc(self, timeout: float = 10.0) -> Any:
        """supervisord's XML-RPC proxy (`rpc().supervisor.stopProcess("rl-node-2")`)."""
        return xmlrpc.client.ServerProxy(
            f"{self.urls.supervisor}/RPC2", transport=_Transport(timeout), allow_none=True
        )

    # State -------------------------------------------------------------------------------

    def supervisord_pid(self) -> int | None:
        try:
            pid = int(self.spec.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = " ".join(psutil.Process(pid).cmdline())
        except psutil.Error:
            return None
        # Only a supervisord running our config counts: a reused pid is someone else's.
        return pid if str(self.spec.conf_path) in cmdline else None

    def running(self) -> bool:
        """supervisord is up and answering."""
        if self.supervisord_pid() is None:
            return False
        try:
            return self.rpc(2.0).supervisor.getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def status(self) -> dict[str, dict[str, Any]]:
        """Program name -> supervisord's process info (statename, pid, ...)."""
        return {info["name"]: info for info in self.rpc().supervisor.getAllProcessInfo()}

    def pid(self, program: str) -> int | None:
        info = self.rpc().supervisor.getProcessInfo(program)
        return int(info["pid"]) or None

    def start_program(self, program: str) -> None:
        self.rpc().supervisor.startProcess(program, True)

    def stop_program(self, program: str) -> None:
        self.rpc().supervisor.stopProcess(program, True)

    # Up ----------------------------------------------------------------------------------

    def up(self, timeout: float = 60.0) -> StackUrls:
        """Start the stack, or finish starting it: idempotent. Returns once every program
        answers (Redis PING, toxiproxy's proxy, each node's /health, Prometheus ready)."""
        deadline = time.monotonic() + timeout
        previous = _load_spec(self.directory)
        if (
            previous is not None
            and previous.base_port != self._options["base_port"]
            and LocalStack.existing(self.directory).running()
        ):
            raise StackError(
                f"{self.directory} already runs a stack on base port {previous.base_port}"
            )
        if self.running():
            # Already up: start what was stopped, and wait for processes to serve (/live),
            # not for health: a fault injected on purpose is not ours to undo.
            self._start_stopped_programs()
            self._wait_ready(deadline, health=False)
        else:
            self._start_fresh()
            try:
                self._wait_ready(deadline, health=True)
            except StackError:
                self.down()
                raise
        self._record_pids()
        return self.urls

    def _start_fresh(self) -> None:
        spec = self.spec
        busy = busy_ports(spec.ports, spec.nodes)
        if busy:
            role, port = busy[0]
            raise StackError(f"port {port} ({role}) is busy on {HOST}: pick another --base-port")
        for sub in ("logs", "redis", "prometheus"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        spec.conf_path.write_text(supervisord_conf(spec))
        (self.directory / "prometheus.yml").write_text(prometheus_yml(spec))
        (self.directory / "toxiproxy.json").write_text(toxiproxy_json(spec))
        (self.directory / SPEC_FILE).write_text(spec.model_dump_json(indent=2) + "\n")
        log = self.directory / "supervisord.start.log"
        with log.open("w") as out:
            # supervisord forks into the background and this call returns; its output
            # goes to a file so no pipe of ours stays open in the daemon.
            proc = subprocess.run(
                [str(spec.python), "-m", "supervisor.supervisord", "-c", str(spec.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                check=False,
            )
        if proc.returncode != 0:
            tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
            raise StackError(f"supervisord failed to start: {tail[0]}")

    def _start_stopped_programs(self) -> None:
        states = self.status()
        for program in self.programs:
            if states.get(program, {}).get("statename") not in ("RUNNING", "STARTING"):
                try:
                    self.rpc().supervisor.startProcess(program, False)
                except xmlrpc.client.Fault as fault:
                    if "ALREADY_STARTED" not in fault.faultString:
                        raise StackError(f"cannot start {program}: {fault.faultString}") from None

    def _wait_ready(self, deadline: float, health: bool) -> None:
        spec = self.spec
        urls = self.urls
        _wait("supervisord", self.running, deadline, self._log_hint("supervisord"))
        _wait(
            "redis",
            lambda: _redis_pings(spec.ports.redis),
            deadline,
            self._log_hint("redis"),
        )
        _wait(
            "toxiproxy",
            lambda: _http_status(f"{urls.toxiproxy}/proxies/{PROXY_NAME}") == 200,
            deadline,
            self._log_hint("toxiproxy"),
        )
        probe = "/health" if health else "/live"
        for name, url in urls.nodes.items():
            _wait(
                name,
                lambda url=url: _http_status(url + probe) == 200,  # type: ignore[misc]
                deadline,
                self._log_hint(name),
            )
        _wait(
            "prometheus",
            lambda: _http_status(f"{urls.prometheus}/-/ready") == 200,
            deadline,
            self._log_hint("prometheus"),
        )

    def _log_hint(self, program: str) -> str:
        path = self.spec.log_dir / f"{program}.log"
        if program == "supervisord":
            path = self.directory / "supervisord.log"
        try:
            last = path.read_text(errors="replace").strip().splitlines()[-1]
        except (OSError, IndexError):
            return f" (log: {path})"
        return f" (last log line: {last[:200]})"

    def _record_pids(self) -> None:
        pids = {}
        sup = self.supervisord_pid()
        for name, info in [("supervisord", {"pid": sup}), *self.status().items()]:
            pid = info.get("pid")
            if pid:
                try:
                    pids[name] = [pid, psutil.Process(pid).create_time()]
                except psutil.Error:
                    continue
        (self.directory / PIDS_FILE).write_text(json.dumps(pids, indent=2) + "\n")

    # Down --------------------------------------------------------------------------------

    def down(self, timeout: float = 30.0) -> list[int]:
        """Stop every program and supervisord; make sure no process of this stack is left.
        Returns the pids that were stopped."""
        if self._spec is None:
            # Stop what was started, as it was started: never resolve tools just to stop.
            self._spec = _load_spec(self.directory)
            if self._spec is None:
                return []
        deadline = time.monotonic() + timeout
        tracked = {pid: t for pid, t in self._tracked_pids().items() if _alive(pid, t)}
        sup = self.supervisord_pid()
        if sup is not None:
            try:
                self.rpc(5.0).supervisor.shutdown()
            except (OSError, xmlrpc.client.Error):
                os.kill(sup, signal.SIGTERM)  # RPC is gone but the daemon is ours: TERM it
        for pid, created in tracked.items():
            while _alive(pid, created) and time.monotonic() < deadline:
                time.sleep(0.05)
        left = [pid for pid, created in tracked.items() if _alive(pid, created)]
        for pid in left:
            # Verified ours by pid *and* start time: only then is a KILL safe.
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.1 if left else 0)
        still = [pid for pid, created in tracked.items() if _alive(pid, created)]
        if still:
            raise StackError(f"processes still running after down: {still}")
        (self.directory / PIDS_FILE).unlink(missing_ok=True)
        return sorted(tracked)

    def _tracked_pids(self) -> dict[int, float | None]:
        """pid -> start time of everything this stack started: the pids file from `up`,
        plus what supervisord reports now (it may have restarted programs since)."""
        tracked: dict[int, float | None] = {}
        try:
            recorded = json.loads((self.directory / PIDS_FILE).read_text())
            tracked.update({int(pid): float(created) for pid, created in recorded.values()})
        except (OSError, ValueError, TypeError):
            pass
        sup = self.supervisord_pid()
        if sup is not None:
            tracked.setdefault(sup, None)
            try:
                for info in self.rpc(5.0).supervisor.getAllProcessInfo():
                    if info.get("pid"):
                        tracked.setdefault(int(info["pid"]), None)
            except (OSError, xmlrpc.client.Error):
                pass
        # Resolve unknown start times now, while the pids surely are still ours.
        for pid, created in list(tracked.items()):
            if created is None:
                try:
                    tracked[pid] = psutil.Process(pid).create_time()
                except psutil.Error:
                    del tracked[pid]
        return tracked


def _load_spec(directory: Path) -> StackSpec | None:
    try:
        return StackSpec.model_validate_json((directory / SPEC_FILE).read_text())
    except (OSError, ValueError):
        return None
