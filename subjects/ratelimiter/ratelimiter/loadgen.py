"""`ratelimiter-loadgen`: drive checks at a set rate (with bursts) across nodes, and report
allowed/blocked/errors and latency live.

Open loop by default: requests are sent on a schedule, not when the previous one returns,
so a slow service gets more concurrent work rather than less (a closed loop would hide
latency by slowing down with it). `--rps 0` is closed loop instead: `--concurrency` workers
back to back, for measuring the most a setup sustains.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field

from ratelimiter.client import ClientError, Connection, Endpoint, check_body

# Latency samples kept for the final percentiles; beyond this, a uniform reservoir.
MAX_SAMPLES = 2_000_000


@dataclass(frozen=True)
class LoadConfig:
    urls: list[str]
    rps: float = 100.0  # 0: closed loop
    concurrency: int = 64
    keys: int = 100
    key_prefix: str = "load"
    duration_s: float = 30.0
    max_requests: int | None = None
    burst_every_s: float = 0.0  # 0: no bursts
    burst_seconds: float = 0.0
    burst_rps: float = 0.0
    report_every_s: float = 1.0
    timeout_s: float = 2.0
    seed: int | None = None

    def validate(self) -> None:
        if not self.urls:
            raise ValueError("at least one --url is needed")
        for url in self.urls:
            Endpoint.parse(url)
        if self.rps < 0 or self.concurrency < 1 or self.keys < 1:
            raise ValueError("--rps must be >= 0, --concurrency and --keys >= 1")
        if not 0 < self.duration_s <= 24 * 3600:
            raise ValueError("--duration must be in (0, 86400] seconds")
        if self.burst_every_s:
            if not 0 < self.burst_seconds < self.burst_every_s:
                raise ValueError("--burst-seconds must be in (0, --burst-every)")
            if self.burst_rps <= self.rps:
                raise ValueError("--burst-rps must exceed --rps")

    def due(self, elapsed: float) -> float:
        """Requests that should have been sent `elapsed` seconds in (the rate's integral).
        Bursts take the last `burst_seconds` of every `burst_every_s` cycle."""
        sent = self.rps * elapsed
        if self.burst_every_s:
            cycles, into = divmod(elapsed, self.burst_every_s)
            in_burst = cycles * self.burst_seconds + max(
                0.0, into - (self.burst_every_s - self.burst_seconds)
            )
            sent += (self.burst_rps - self.rps) * in_burst
        return sent


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Window:
    """Counts and latencies (seconds) over an interval."""

    allowed: int = 0
    blocked: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.allowed + self.blocked + sum(self.errors.values())


@dataclass(frozen=True)
class Report:
    elapsed_s: float
    sent: int
    allowed: int
    blocked: int
    errors: dict[str, int]
    skipped: int  # open loop: requests due while every worker was busy
    rate: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float

    def line(self) -> str:
        errors = sum(self.errors.values())
        kinds = ",".join(f"{k}={v}" for k, v in sorted(self.errors.items()))
        return (
            f"{self.elapsed_s:7.1f}s  {self.rate:8.0f}/s  allowed {self.allowed:7d}  "
            f"blocked {self.blocked:7d}  errors {errors:5d}{' (' + kinds + ')' if kinds else ''}"
            f"  p50 {self.p50_ms:6.2f}ms  p99 {self.p99_ms:6.2f}ms  max {self.max_ms:7.2f}ms"
            + (f"  skipped {self.skipped}" if self.skipped else "")
        )


def _report(window: Window, elapsed: float, span: float, skipped: int) -> Report:
    lat = sorted(window.latencies)
    return Report(
        elapsed_s=round(elapsed, 3),
        sent=window.total,
        allowed=window.allowed,
        blocked=window.blocked,
        errors=dict(window.errors),
        skipped=skipped,
        rate=window.total / span if span > 0 else 0.0,
        p50_ms=percentile(lat, 0.50) * 1000,
        p90_ms=percentile(lat, 0.90) * 1000,
        p99_ms=percentile(lat, 0.99) * 1000,
        p999_ms=percentile(lat, 0.999) * 1000,
        max_ms=(lat[-1] if lat else 0.0) * 1000,
    )


class LoadRun:
    def __init__(self, config: LoadConfig, on_report: Callable[[Report], None] | None) -> None:
        config.validate()
        self.config = config
        self.on_report = on_report
        self.rng = random.Random(config.seed)
        self.endpoints = [Endpoint.parse(u) for u in config.urls]
        self.total = Window()
        self.interval = Window()
        self.skipped = 0
        self.seen = 0  # latency samples offered to the reservoir
        self.queue: asyncio.Queue[None] = asyncio.Queue()
        self.stopping = False
        self.issued = 0

    def _record(self, status: int | None, kind: str, latency: float) -> None:
        for window in (self.total, self.interval):
            if status == 200:
                window.allowed += 1
            elif status == 429:
                window.blocked += 1
            else:
                window.errors[kind] += 1
        self.interval.latencies.append(latency)
        self.seen += 1
        if len(self.total.latencies) < MAX_SAMPLES:
            self.total.latencies.append(latency)
        else:
            slot = self.rng.randrange(self.seen)
            if slot < MAX_SAMPLES:
                self.total.latencies[slot] = latency

    async def _one(self, conns: list[Connection]) -> None:
        conn = conns[self.rng.randrange(len(conns))]
        key = f"{self.config.key_prefix}-{self.rng.randrange(self.config.keys)}"
        started = time.perf_counter()
        try:
            reply = await conn.request("POST", "/check", check_body(key))
        except ClientError:
            self._record(None, "connection", time.perf_counter() - started)
            return
        self._record(reply.status, f"http_{reply.status}", time.perf_counter() - started)

    def _may_issue(self) -> bool:
        limit = self.config.max_requests
        if self.stopping or (limit is not None and self.issued >= limit):
            return False
        self.issued += 1
        return True

    async def _worker(self, closed_loop: bool) -> None:
        conns = [Connection(e, self.config.timeout_s) for e in self.endpoints]
        try:
            while True:
                if not closed_loop:
                    await self.queue.get()
                if not self._may_issue():
                    return
                await self._one(conns)
        finally:
            for conn in conns:
                conn.close()

    async def _schedule(self, start: float) -> None:
        """Open loop: release `due(t)` requests by time t; count what the workers can't take."""
        released = 0
        while not self.stopping:
            due = int(self.config.due(time.perf_counter() - start))
            if due > released:
                backlog = self.queue.qsize()
                room = max(0, self.config.concurrency - backlog)
                batch = due - released
                for _ in range(min(batch, room)):
                    self.queue.put_nowait(None)
                self.skipped += max(0, batch - room)
                released = due
            # Wake about when the next request is due: polling faster only burns the CPU the
            # service under test is sharing.
            await asyncio.sleep(min(0.005, max(0.0002, 1 / max(1.0, self._rate_now(start)))))

    def _rate_now(self, start: float) -> float:
        elapsed = time.perf_counter() - start
        return (self.config.due(elapsed + 0.01) - self.config.due(elapsed)) / 0.01

    async def run(self) -> Report:
        cfg = self.config
        start = time.perf_counter()
        closed = cfg.rps == 0
        workers = [asyncio.create_task(self._worker(closed)) for _ in range(cfg.concurrency)]
        scheduler = None if closed else asyncio.create_task(self._schedule(start))
        last = start
        deadline = start + cfg.duration_s
        try:
            while True:
                finished = all(w.done() for w in workers)
                now = time.perf_counter()
                if now >= deadline or finished:
                    break
                await asyncio.sleep(min(cfg.report_every_s - (now - last), deadline - now))
                now = time.perf_counter()
                if now - last >= cfg.report_every_s - 1e-3 and self.on_report is not None:
                    self.on_report(_report(self.interval, now - start, now - last, self.skipped))
                    self.interval = Window()
                    last = now
        finally:
            self.stopping = True
            if scheduler is not None:
                scheduler.cancel()
            for _ in workers:  # wake workers waiting for a token so they see `stopping`
                self.queue.put_nowait(None)
            await asyncio.gather(*workers, return_exceptions=True)
            if scheduler is not None:
                await asyncio.gather(scheduler, return_exceptions=True)
        elapsed = time.perf_counter() - start
        return _report(self.total, elapsed, elapsed, self.skipped)


async def run_load(config: LoadConfig, on_report: Callable[[Report], None] | None = None) -> Report:
    return await LoadRun(config, on_report).run()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ratelimiter-loadgen", description=__doc__)
    p.add_argument("--url", action="append", dest="urls", help="node URL (repeat for several)")
    p.add_argument("--rps", type=float, default=100.0, help="requests/s; 0 = closed loop")
    p.add_argument("--concurrency", type=int, default=64, help="most requests in flight")
    p.add_argument("--keys", type=int, default=100, help="distinct keys, chosen uniformly")
    p.add_argument("--key-prefix", default="load")
    p.add_argument("--duration", type=float, default=30.0, help="seconds to run")
    p.add_argument("--requests", type=int, default=None, help="stop after this many requests")
    p.add_argument("--burst-every", type=float, default=0.0, help="seconds between bursts")
    p.add_argument("--burst-seconds", type=float, default=0.0, help="length of each burst")
    p.add_argument("--burst-rps", type=float, default=0.0, help="rate during a burst")
    p.add_argument("--report-every", type=float, default=1.0, help="seconds between lines")
    p.add_argument("--timeout", type=float, default=2.0, help="per-request timeout, seconds")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def _run(coro: Coroutine[None, None, Report]) -> Report:
    # uvloop when present (it is with uvicorn[standard]): less client CPU per request.
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = LoadConfig(
        urls=args.urls or ["http://127.0.0.1:8080"],
        rps=args.rps,
        concurrency=args.concurrency,
        keys=args.keys,
        key_prefix=args.key_prefix,
        duration_s=args.duration,
        max_requests=args.requests,
        burst_every_s=args.burst_every,
        burst_seconds=args.burst_seconds,
        burst_rps=args.burst_rps,
        report_every_s=args.report_every,
        timeout_s=args.timeout,
        seed=args.seed,
    )
    try:
        config.validate()
    except ValueError as exc:
        print(f"ratelimiter-loadgen: {exc}", file=sys.stderr)
        return 2

    def show(report: Report) -> None:
        print(report.line(), flush=True)

    try:
        summary = _run(run_load(config, None if args.json else show))
    except KeyboardInterrupt:
        return 130
    if args.json:
        print(json.dumps(asdict(summary)))
    else:
        print("total:  " + summary.line())
        print(
            f"        p90 {summary.p90_ms:.2f}ms  p99.9 {summary.p999_ms:.2f}ms  "
            f"sent {summary.sent} in {summary.elapsed_s:.1f}s"
        )
    # Errors are worth a nonzero exit: scripts and CI notice a broken target.
    return 1 if summary.errors else 0


if __name__ == "__main__":
    sys.exit(main())
