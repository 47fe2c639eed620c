"""`ratelimiter` / `python -m ratelimiter`: run one node. Settings come from RL_* variables
(see ratelimiter.config); the flags below override the most common ones."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ratelimiter.config import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ratelimiter", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "settings"])
    parser.add_argument("--host", help="listen address (RL_HOST)")
    parser.add_argument("--port", help="listen port (RL_PORT)")
    parser.add_argument("--node-id", help="node id (RL_NODE_ID)")
    parser.add_argument("--redis-url", help="Redis URL (RL_REDIS_URL)")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    for flag, var in (
        ("host", "HOST"),
        ("port", "PORT"),
        ("node_id", "NODE_ID"),
        ("redis_url", "REDIS_URL"),
    ):
        value = getattr(args, flag)
        if value is not None:
            env[f"RL_{var}"] = value
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        print(f"ratelimiter: bad settings: {exc}", file=sys.stderr)
        return 2
    if args.command == "settings":
        print(settings.model_dump_json(indent=2))
        return 0

    # Imported here: `settings` must work (and fail cleanly) without the server stack, which
    # is the distribution's `server` extra (the operator installs the package without it).
    try:
        import uvicorn

        from ratelimiter.app import create_app
    except ModuleNotFoundError as err:
        print(
            f"ratelimiter: the service needs its server dependencies ({err}): "
            f"pip install 'aiops-ratelimiter[server]'",
            file=sys.stderr,
        )
        return 2

    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s {settings.node_id} %(name)s: %(message)s",
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        # One line per check at thousands of checks a second is noise, and costs CPU.
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
