"""Every port of a stack is derived from one base port, so two stacks side by side only need
two bases at least PORT_SPAN apart."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass

HOST = "127.0.0.1"
PORT_SPAN = 10  # base .. base+9; 8 used, 2 kept spare so the layout can grow compatibly
MAX_NODES = 3


@dataclass(frozen=True)
class StackPorts:
    base: int

    def __post_init__(self) -> None:
        if not 1024 <= self.base <= 65535 - PORT_SPAN:
            raise ValueError(f"base port must be in 1024..{65535 - PORT_SPAN}, got {self.base}")

    @property
    def supervisor(self) -> int:
        return self.base

    @property
    def redis(self) -> int:
        return self.base + 1

    @property
    def toxiproxy(self) -> int:
        return self.base + 2

    @property
    def redis_proxy(self) -> int:
        """Where toxiproxy listens for Redis clients: the nodes' Redis address."""
        return self.base + 3

    @property
    def prometheus(self) -> int:
        return self.base + 4

    def node(self, index: int) -> int:
        if not 1 <= index <= MAX_NODES:
            raise ValueError(f"node index must be 1..{MAX_NODES}")
        return self.base + 4 + index

    def roles(self, nodes: int = MAX_NODES) -> dict[str, int]:
        roles = {
            "supervisord": self.supervisor,
            "redis": self.redis,
            "toxiproxy API": self.toxiproxy,
            "toxiproxy redis proxy": self.redis_proxy,
            "prometheus": self.prometheus,
        }
        roles.update({f"rl-node-{i}": self.node(i) for i in range(1, nodes + 1)})
        return roles


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def busy_ports(ports: StackPorts, nodes: int = MAX_NODES) -> list[tuple[str, int]]:
    return [(role, port) for role, port in ports.roles(nodes).items() if not port_is_free(port)]


def find_free_base(low: int = 20000, high: int = 40000, attempts: int = 200) -> int:
    """A base port whose whole span is free now (racy by nature: bind soon after)."""
    rng = random.Random()
    for _ in range(attempts):
        base = rng.randrange(low, high - PORT_SPAN) // PORT_SPAN * PORT_SPAN
        if all(port_is_free(p) for p in range(base, base + PORT_SPAN)):
            return base
    raise RuntimeError(f"no free span of {PORT_SPAN} ports in {low}..{high}")
