"""Durations on the monotonic clock; the wall clock only for timestamps.

What an operator waits for is anchored on a wall-clock timestamp in status (when an Incident
entered a phase), since status must outlive the process. The wall clock can step (NTP, a VM
resumed, a person), so it is read once per anchor, when this process first asks about it; from
then on the time since the anchor runs on `time.monotonic()`. A step of the wall clock later
neither ends a wait early (forward) nor stretches it (backward). A restarted operator reads the
wall clock once more for each anchor: that is all status can give it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import datetime, timedelta

from aiops.subjects.contract import utcnow

MAX_ANCHORS = 10_000  # one per waiting Incident phase: far more than one operator holds
_first_seen: OrderedDict[tuple[str, datetime], tuple[float, float]] = OrderedDict()


def elapsed_since(key: str, anchor: datetime) -> timedelta:
    """Time since `anchor` (a timestamp from status) for the wait named `key`: from the wall
    clock the first time, on the monotonic clock since. Never negative."""
    now = time.monotonic()
    slot = (key, anchor)
    first = _first_seen.get(slot)
    if first is None:
        first = (now, max((utcnow() - anchor).total_seconds(), 0.0))
        _first_seen[slot] = first
        while len(_first_seen) > MAX_ANCHORS:
            _first_seen.popitem(last=False)
    else:
        _first_seen.move_to_end(slot)
    seen_at, elapsed_then = first
    return timedelta(seconds=elapsed_then + (now - seen_at))
