#!/usr/bin/env python
"""Benchmark: how long one TiKV observation takes as the cluster's region count grows, with a
store down (the moment it matters: PD's down-peer list then holds every region that had a peer
on it). Runs the real plugin against the PD stand-in of the tests (tests/fixtures/pd_standin.py:
PD's API and JSON on 127.0.0.1 sockets), without Prometheus.

    .venv/bin/python hack/bench/tikv_observe.py                   # 10k, 50k, 200k regions
    .venv/bin/python hack/bench/tikv_observe.py --regions 1000 --rounds 3 --json

For each region count it prints the size of PD's down-peer answer, the observation's time
(median and worst of --rounds; the plugin reads the list's count and first ten regions only),
and for comparison the time to read and validate the whole list, which is what an observation
cost before and what restart_store's quorum check still reads (bounded by
requestTimeoutSeconds, so at this size that check fails closed: the restart is refused).

Not a test: numbers on a shared machine move with whatever else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the stand-in lives with the tests

from aiops.subjects import registry  # noqa: E402
from aiops.subjects.context import PluginContext  # noqa: E402
from tests.fixtures.pd_standin import PdStandIn, healthy, many_regions  # noqa: E402
from tikv_subject.pd import PdClient  # noqa: E402


async def measure(count: int, rounds: int, full: bool) -> dict[str, Any]:
    standin = healthy(PdStandIn(members=1))
    try:
        standin.set_heartbeat_age(2, 60)  # store 2 Disconnected: its regions have a down peer
        body = many_regions(count, down=2)
        standin.set_region_check_body("down-peer", body)
        cls = registry.load("tikv")
        cfg = registry.validate_config(cls, {"pdUrls": standin.urls})
        ctx = PluginContext(subject="bench/tikv", prometheus=None, workload=None)
        plugin = cls(cfg, ctx)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            obs = await plugin.observe()
            times.append(time.perf_counter() - start)
        assert obs.metrics["unhealthy_regions"]["down-peer"] == count
        result: dict[str, Any] = {
            "regions": count,
            "down_peer_body_mb": round(len(body) / 1e6, 1),
            "observe_median_s": round(statistics.median(times), 3),
            "observe_max_s": round(max(times), 3),
        }
        if full:
            async with httpx.AsyncClient() as http:
                pd = PdClient(standin.urls, http, timeout=600)
                start = time.perf_counter()
                listed = await pd.region_check("down-peer")
                result["full_list_read_s"] = round(time.perf_counter() - start, 2)
                assert listed.count == count
        await ctx.aclose()
        return result
    finally:
        standin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regions", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-full", action="store_true", help="skip the whole-list read")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [asyncio.run(measure(n, args.rounds, not args.no_full)) for n in args.regions]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{'regions':>8} {'down-peer body':>15} {'observe median':>15} {'observe max':>12} "
        f"{'whole list read':>16}"
    )
    for r in rows:
        whole = f"{r['full_list_read_s']:.2f} s" if "full_list_read_s" in r else "-"
        print(
            f"{r['regions']:>8} {r['down_peer_body_mb']:>12.1f} MB {r['observe_median_s']:>13.3f} s"
            f" {r['observe_max_s']:>10.3f} s {whole:>16}"
        )


if __name__ == "__main__":
    main()
