"""The Redis key layout, in one place: the service, the admin API and outside observers (an
operator plugin checking for drift) all name keys through this.

    {p}:w:{key}        ZSET  sliding-window log of one key: member = request id, score = Redis
                             time of the allowed request in microseconds; PEXPIREs one window
                             after its newest entry
    {p}:limits         HASH  per-key override: field = key, value = "limit:window_ms";
                             field "" (never a valid key) = the shared default
    {p}:active         ZSET  index of keys with a live log: score = ms when the log expires
    {p}:blocked        ZSET  keys refused recently: score = ms when the next request is allowed
    {p}:nodes          HASH  node registry: field = node id, value = JSON (address, last_seen_ms,
                             started_ms, stopped_ms)
    {p}:alive:{node}   STRING heartbeat with a TTL; its absence makes the node Down
"""

from __future__ import annotations

from dataclasses import dataclass

# The limits hash keeps the shared default under the empty field: keys are at least one byte,
# so it can never collide with a real key, and one HMGET reads override and default together.
DEFAULT_FIELD = ""


@dataclass(frozen=True)
class KeySpace:
    prefix: str

    def window(self, key: str) -> str:
        return f"{self.prefix}:w:{key}"

    @property
    def limits(self) -> str:
        return f"{self.prefix}:limits"

    @property
    def active(self) -> str:
        return f"{self.prefix}:active"

    @property
    def blocked(self) -> str:
        return f"{self.prefix}:blocked"

    @property
    def nodes(self) -> str:
        return f"{self.prefix}:nodes"

    def alive(self, node_id: str) -> str:
        return f"{self.prefix}:alive:{node_id}"
