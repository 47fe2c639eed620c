"""Delay added to everything a pod sends, by a `tc netem` qdisc on its network device: the
store-latency fault (the original system's evaluation used netem the same way).

The qdisc gets a handle of our own (`HANDLE`), so the revert deletes it only when the root
qdisc is that one, never one somebody else put there. The commands run in the member's
container by exec, which needs `tc` (iproute2) in its image and the NET_ADMIN capability.
"""

from __future__ import annotations

import re

from aiops.subjects.faults.delay import DelayParams

HANDLE = "a1c5:"
DEVICE_PATTERN = r"^[a-zA-Z0-9_.-]{1,15}$"  # a Linux interface name (IFNAMSIZ - 1)


def add_argv(device: str, p: DelayParams) -> list[str]:
    """`replace`, not `add`: injecting twice sets the delay asked, it does not fail."""
    delay = ["delay", f"{p.latency_ms}ms"] + ([f"{p.jitter_ms}ms"] if p.jitter_ms else [])
    return ["tc", "qdisc", "replace", "dev", device, "root", "handle", HANDLE, "netem", *delay]


def show_argv(device: str) -> list[str]:
    return ["tc", "qdisc", "show", "dev", device, "root"]


def del_argv(device: str) -> list[str]:
    return ["tc", "qdisc", "del", "dev", device, "root", "handle", HANDLE]


def ours(show_output: str) -> bool:
    """Is the root qdisc in `tc qdisc show` our netem?"""
    return any(
        re.match(rf"qdisc netem {re.escape(HANDLE)} root\b", line.strip())
        for line in show_output.splitlines()
    )
