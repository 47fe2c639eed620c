#!/usr/bin/env python
"""Benchmark: the rate limiter against the `limits` library's moving-window strategy, on the
same Redis, at the same concurrency, over the same keys. Prints a table (or --json).

    .venv/bin/python hack/bench/ratelimiter_bench.py                # defaults as in the docs
    .venv/bin/python hack/bench/ratelimiter_bench.py --json

Three measurements, each bounded by a request count or a duration:

1. library: a check call in-process, closed loop with --concurrency tasks, --requests each
   round (best of --rounds): ours pipelined (as the service runs it), ours through redis-py,
   and `limits` MovingWindowRateLimiter.hit with its default (coredis) and redis-py clients.
2. service: the same over HTTP, closed loop: one `ratelimiter` node vs. a minimal Starlette
   app on the same uvicorn settings calling `limits` (started by this script: --serve-peer).
3. open loop at --rate checks/s for --rate-seconds against each service: the latency a
   client sees at a fixed load.

Loopback only. Not a test: numbers on a shared 2-core machine move with whatever else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

HOST = "127.0.0.1"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_until(ready: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.05)


def answers(port: int, path: str) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            return sock.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str] | None = None) -> Iterator[object]:
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(argv, env=env, stdout=quiet, stderr=quiet, stdin=quiet)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    from ratelimiter.localstack.tools import redis_server as binary

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            str(binary()),
            "--port",
            str(port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp,
        ]
        with process(argv):

            def pings() -> bool:
                try:
                    with socket.create_connection((HOST, port), timeout=0.5) as sock:
                        sock.sendall(b"PING\r\n")
                        return sock.recv(8).startswith(b"+PONG")
                except OSError:
                    return False

            wait_until(pings, "redis-server")
            yield f"redis://{HOST}:{port}/0"


@dataclass
class Result:
    name: str
    checks: int
    seconds: float
    p50_ms: float
    p99_ms: float
    allowed: int = 0

    @property
    def rate(self) -> float:
        return self.checks / self.seconds

    def row(self) -> str:
        return (
            f"  {self.name:<34} {self.rate:>9,.0f}/s   p50 {self.p50_ms:6.2f} ms"
            f"   p99 {self.p99_ms:6.2f} ms"
        )


def pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] * 1000


async def closed_loop(
    name: str, check: Callable[[str], Awaitable[bool]], keys: int, requests: int, concurrency: int
) -> Result:
    latencies: list[float] = []
    allowed = 0
    counter = iter(range(requests))

    async def worker() -> None:
        nonlocal allowed
        for i in counter:
            started = time.perf_counter()
            ok = await check(f"bench-{i % keys}")
            latencies.append(time.perf_counter() - started)
            allowed += ok

    for i in range(min(1000, requests)):  # warm: scripts loaded, pools filled
        await check(f"warm-{i}")
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return Result(name, requests, elapsed, pct(latencies, 0.5), pct(latencies, 0.99), allowed)


async def library_round(args: argparse.Namespace, redis_url: str, prefix: str) -> list[Result]:
    from limits import RateLimitItemPerSecond
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import MovingWindowRateLimiter
    from redis.asyncio import BlockingConnectionPool, Redis

    from ratelimiter.channel import ScriptChannel
    from ratelimiter.keys import KeySpace
    from ratelimiter.limiter import LimitSpec, RateLimiter

    results = []
    pool = BlockingConnectionPool.from_url(redis_url, max_connections=128, decode_responses=True)
    client = Redis(connection_pool=pool)
    spec = LimitSpec(args.limit, args.window_ms)
    channel = ScriptChannel(redis_url, timeout=5.0)
    for tag, name, piped in (
        ("p", "ours (pipelined, as served)", channel),
        ("r", "ours (through redis-py)", None),
    ):
        limiter = RateLimiter(client, KeySpace(prefix + tag), spec, piped)

        async def ours(key: str, limiter: RateLimiter = limiter) -> bool:
            return (await limiter.check(key)).allowed

        results.append(await closed_loop(name, ours, args.keys, args.requests, args.concurrency))
    await client.aclose()
    await channel.aclose()

    item = RateLimitItemPerSecond(args.limit, max(1, args.window_ms // 1000))
    for implementation in ("coredis", "redispy"):
        storage = RedisStorage(
            "async+" + redis_url, implementation=implementation, key_prefix=prefix + implementation
        )
        peer = MovingWindowRateLimiter(storage)

        async def theirs(key: str, peer: MovingWindowRateLimiter = peer) -> bool:
            return await peer.hit(item, key)

        name = f"limits moving-window ({implementation})"
        results.append(await closed_loop(name, theirs, args.keys, args.requests, args.concurrency))
    return results


async def http_closed(name: str, url: str, args: argparse.Namespace) -> Result:
    from ratelimiter.loadgen import LoadConfig, run_load

    warm = LoadConfig(
        urls=[url],
        rps=0,
        concurrency=args.concurrency,
        keys=args.keys,
        key_prefix="warm",
        duration_s=60,
        max_requests=1000,
    )
    await run_load(warm)
    config = LoadConfig(
        urls=[url],
        rps=0,
        concurrency=args.concurrency,
        keys=args.keys,
        key_prefix="bench",
        duration_s=120,
        max_requests=args.requests,
    )
    report = await run_load(config)
    if report.errors:
        raise SystemExit(f"bench: {name} answered errors: {report.errors}")
    return Result(name, report.sent, report.elapsed_s, report.p50_ms, report.p99_ms, report.allowed)


async def http_open(name: str, url: str, args: argparse.Namespace) -> tuple[Result, float]:
    from ratelimiter.loadgen import LoadConfig, run_load

    config = LoadConfig(
        urls=[url],
        rps=args.rate,
        concurrency=args.concurrency,
        keys=args.keys,
        key_prefix="open",
        duration_s=args.rate_seconds,
    )
    report = await run_load(config)
    if report.errors:
        raise SystemExit(f"bench: {name} answered errors: {report.errors}")
    result = Result(
        name, report.sent, report.elapsed_s, report.p50_ms, report.p99_ms, report.allowed
    )
    return result, report.max_ms


def serve_peer(port: int, redis_url: str, limit: int, window_ms: int) -> None:
    """The peer as a service: `limits` moving window behind the same HTTP stack as ours."""
    import uvicorn
    from limits import RateLimitItemPerSecond
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import MovingWindowRateLimiter
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    item = RateLimitItemPerSecond(limit, max(1, window_ms // 1000))
    peer = MovingWindowRateLimiter(RedisStorage("async+" + redis_url, key_prefix="peer"))

    async def check(request: Request) -> Response:
        key = json.loads(await request.body())["key"]
        allowed = await peer.hit(item, key)
        body = json.dumps({"allowed": allowed, "key": key})
        return Response(body, 200 if allowed else 429, media_type="application/json")

    async def health(request: Request) -> Response:
        return Response("{}", media_type="application/json")

    app = Starlette(routes=[Route("/check", check, methods=["POST"]), Route("/health", health)])
    uvicorn.run(
        app,
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


def run_uvloop(coro: Coroutine[Any, Any, T]) -> T:
    import uvloop

    return uvloop.run(coro)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--requests", type=int, default=10_000, help="per closed-loop run")
    p.add_argument("--rounds", type=int, default=3, help="library runs: best of")
    p.add_argument("--keys", type=int, default=1000)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--window-ms", type=int, default=1000)
    p.add_argument("--rate", type=float, default=1000.0, help="open-loop checks/s")
    p.add_argument("--rate-seconds", type=float, default=10.0)
    p.add_argument("--open-rounds", type=int, default=3, help="open-loop runs per service")
    p.add_argument("--skip", action="append", default=[], choices=["library", "service", "closed"])
    p.add_argument("--json", action="store_true")
    p.add_argument("--serve-peer", nargs=2, metavar=("PORT", "REDIS_URL"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_peer:
        serve_peer(int(args.serve_peer[0]), args.serve_peer[1], args.limit, args.window_ms)
        return 0

    out: dict[str, object] = {
        "concurrency": args.concurrency,
        "requests": args.requests,
        "keys": args.keys,
        "limit": f"{args.limit}/{args.window_ms}ms",
        "cpus": os.cpu_count(),
    }
    lines = [
        f"concurrency {args.concurrency}, {args.requests} checks per run, {args.keys} keys, "
        f"limit {args.limit} per {args.window_ms} ms, {os.cpu_count()} CPUs"
    ]
    with redis_server() as redis_url:
        if "library" not in args.skip:
            best: dict[str, Result] = {}
            for r in range(args.rounds):
                # A fresh key space per round: every round starts from the same empty state.
                round_results = run_uvloop(library_round(args, redis_url, f"b{r}"))
                for res in round_results:
                    if res.name not in best or res.rate > best[res.name].rate:
                        best[res.name] = res
            lib = list(best.values())
            # The headline is against the peer's best configuration in this run (whichever of
            # its clients was faster), never a slower one that flatters us.
            peer = max(
                (r for name, r in best.items() if name.startswith("limits")), key=lambda r: r.rate
            )
            ours = best["ours (pipelined, as served)"]
            lines.append(f"library, closed loop (best of {args.rounds}):")
            lines += [r.row() for r in lib]
            lines.append(f"  ratio ours/{peer.name} (the peer's best) {ours.rate / peer.rate:.2f}x")
            out["library"] = [asdict(r) | {"rate": r.rate} for r in lib]
            out["library_ratio"] = ours.rate / peer.rate

        if "service" not in args.skip:
            env = {
                **os.environ,
                "RL_PORT": str(free_port()),
                "RL_REDIS_URL": redis_url,
                "RL_NODE_ID": "bench",
                "RL_DEFAULT_LIMIT": str(args.limit),
                "RL_DEFAULT_WINDOW_MS": str(args.window_ms),
                "RL_LOG_LEVEL": "warning",
                "RL_KEY_PREFIX": "svc",
            }
            ours_port, peer_port = int(env["RL_PORT"]), free_port()
            peer_argv = [
                sys.executable,
                __file__,
                "--serve-peer",
                str(peer_port),
                redis_url,
                "--limit",
                str(args.limit),
                "--window-ms",
                str(args.window_ms),
            ]
            with process([sys.executable, "-m", "ratelimiter"], env), process(peer_argv):
                wait_until(lambda: answers(ours_port, "/health"), "ratelimiter node")
                wait_until(lambda: answers(peer_port, "/health"), "peer service")
                urls = {
                    "ratelimiter service": f"http://{HOST}:{ours_port}",
                    "limits moving-window service": f"http://{HOST}:{peer_port}",
                }
                if "closed" not in args.skip:
                    closed = [run_uvloop(http_closed(n, u, args)) for n, u in urls.items()]
                    lines.append(f"HTTP, closed loop, concurrency {args.concurrency}:")
                    lines += [r.row() for r in closed]
                    ratio = closed[0].rate / closed[1].rate
                    lines.append(f"  ratio ours/limits {ratio:.2f}x")
                    out["http_closed"] = [asdict(r) | {"rate": r.rate} for r in closed]
                    out["http_ratio"] = ratio
                # Alternating rounds: a burst of someone else's work on the machine hits
                # both services alike, and the median says what is typical.
                opened = [
                    run_uvloop(http_open(n, u, args))
                    for _ in range(args.open_rounds)
                    for n, u in urls.items()
                ]
            lines.append(
                f"HTTP, open loop at {args.rate:g} checks/s for {args.rate_seconds:g} s, "
                f"{args.open_rounds} rounds each:"
            )
            for res, max_ms in opened:
                lines.append(res.row() + f"   max {max_ms:6.2f} ms")
            for name in urls:
                p99s = sorted(r.p99_ms for r, _ in opened if r.name == name)
                lines.append(f"  {name}: median p99 {p99s[len(p99s) // 2]:.2f} ms")
            out["http_open"] = [asdict(r) | {"rate": r.rate, "max_ms": m} for r, m in opened]
    # The machine is shared: say how busy it was, so numbers can be read in context.
    load = "load average (1, 5, 15 min) at the end: " + ", ".join(
        f"{x:.2f}" for x in os.getloadavg()
    )
    lines.append(load)
    out["loadavg_end"] = os.getloadavg()
    print(json.dumps(out, indent=2) if args.json else "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
