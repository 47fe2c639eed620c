"""`ratelimiter-stack`: bring a local rate limiter stack up or down.

ratelimiter-stack up   --dir DIR --base-port N [--scrape-interval S] [--autorestart]
ratelimiter-stack down --dir DIR
ratelimiter-stack status --dir DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from ratelimiter.localstack.ports import MAX_NODES
from ratelimiter.localstack.stack import LocalStack, StackError
from ratelimiter.localstack.tools import ToolError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ratelimiter-stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the stack (idempotent)")
    up.add_argument("--dir", required=True, help="state directory (config, logs, data)")
    up.add_argument(
        "--base-port", type=int, required=True, help="first of 10 consecutive ports on 127.0.0.1"
    )
    up.add_argument("--nodes", type=int, default=MAX_NODES, choices=range(1, MAX_NODES + 1))
    up.add_argument("--scrape-interval", type=float, default=2.0, help="Prometheus, seconds")
    up.add_argument("--node-ttl", type=float, default=5.0, help="heartbeat TTL, seconds")
    up.add_argument("--default-limit", type=int, default=100)
    up.add_argument("--default-window-ms", type=int, default=1000)
    up.add_argument(
        "--autorestart",
        action="store_true",
        help="let supervisord restart crashed programs (off: they stay down)",
    )
    up.add_argument("--timeout", type=float, default=60.0)
    for name, text in (
        ("down", "stop everything the stack started"),
        ("status", "program states as JSON"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--dir", required=True)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            stack = LocalStack(
                args.dir,
                args.base_port,
                nodes=args.nodes,
                scrape_interval_s=args.scrape_interval,
                node_ttl_s=args.node_ttl,
                default_limit=args.default_limit,
                default_window_ms=args.default_window_ms,
                autorestart=args.autorestart,
            )
            urls = stack.up(timeout=args.timeout)
            print(json.dumps(asdict(urls), indent=2))
        elif args.command == "down":
            try:
                stack = LocalStack.existing(args.dir)
            except StackError:
                # Idempotent like `up`: nothing to stop is not an error.
                print(f"no stack in {args.dir}; nothing to stop")
                return 0
            print(f"stopped {len(stack.down())} processes")
        else:
            stack = LocalStack.existing(args.dir)
            if not stack.running():
                print(json.dumps({"running": False}))
                return 3
            states = {n: i["statename"] for n, i in stack.status().items()}
            print(json.dumps({"running": True, "programs": states}, indent=2))
    except (StackError, ToolError, ValueError) as exc:
        print(f"ratelimiter-stack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
