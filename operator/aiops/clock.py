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

MAX_ANCHORS = 10_000  # one per waiting Incident phase or Chaos: far more than one operator holds
SAME_ANCHOR = timedelta(seconds=1)  # status may keep a timestamp to the second only
_first_seen: OrderedDict[str, tuple[datetime, float, float]] = OrderedDict()


def elapsed_since(key: str, anchor: datetime) -> timedelta:
    """Time since `anchor` (a timestamp from status) for the wait named `key`: from the wall
    clock the first time, on the monotonic clock since. Never negative. The process that sets
    the anchor calls this right then, so that no step of the wall clock falls between the two.
    Another anchor under the same key (a new phase entry, a new fault) starts afresh."""
    now = time.monotonic()
    first = _first_seen.get(key)
    if first is None or abs(first[0] - anchor) > SAME_ANCHOR:
        first = (anchor, now, max((utcnow() - anchor).total_seconds(), 0.0))
        _first_seen[key] = first
        while len(_first_seen) > MAX_ANCHORS:
            _first_seen.popitem(last=False)
    else:
        _first_seen.move_to_end(key)
    _, seen_at, elapsed_then = first
    return timedelta(seconds=elapsed_then + (now - seen_at))
