"""The main command, behind hack/demo.sh (after hack/setup.sh installed what is missing):

    hack/demo.sh [OPTIONS]   aiops up, then aiops demo ratelimiter [OPTIONS] (e.g. --auto)
    hack/demo.sh down        aiops down

Everything else lives in the `aiops` command: `aiops up | down | status` and `aiops demo`
(docs/demo.md).
"""

from __future__ import annotations

import os
import subprocess
import sys

from aiops.localsystem.layout import DEFAULT_STACK_PORT

STACK_BASE_PORT = DEFAULT_STACK_PORT  # where the demo's rate limiter listens (examples/)


def main(argv: list[str]) -> int:
    aiops = [sys.executable, "-m", "aiops.cli.main"]
    if argv[:1] == ["down"]:
        return subprocess.call([*aiops, "down", *argv[1:]])
    code = subprocess.call([*aiops, "up"])
    if code != 0:
        return code
    # The demo takes over this process: the terminal, its keys and Ctrl-C are its own.
    os.execv(sys.executable, [*aiops, "demo", "ratelimiter", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
