"""Which evict-leader schedulers this operator process added on purpose, and until when.

PD keeps no owner on a scheduler, and the plugin contract gives a plugin no view of the core's
running actions, so ownership is remembered here: process-wide (a plugin instance is rebuilt
whenever its Subject's spec changes; an eviction it started must stay owned), keyed by the PD
cluster and the store. An eviction PD reports that has no live entry here (added by hand, by a
crashed process, or kept past its time) is a leftover: the `evict_leader_leftover` invariant
reports it and `remove_evict_leader` clears it. After an operator restart every eviction is
unowned, which errs on the safe side: leaders come back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Ownership:
    key: str  # the idempotency key of the action that added it
    until: datetime


class EvictionLedger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owned: dict[tuple[str, int], Ownership] = {}

    def claim(self, cluster: str, store_id: int, key: str, until: datetime) -> None:
        with self._lock:
            self._owned[(cluster, store_id)] = Ownership(key, until)

    def release(self, cluster: str, store_id: int) -> None:
        with self._lock:
            self._owned.pop((cluster, store_id), None)

    def owner(self, cluster: str, store_id: int) -> Ownership | None:
        with self._lock:
            return self._owned.get((cluster, store_id))


LEDGER = EvictionLedger()
