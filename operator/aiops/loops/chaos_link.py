"""Which Chaos an Incident about to be opened belongs to, so that TTD and TTR are measured from
the real injection: `faultAt` = the Chaos' `injectedAt`.

A breach is the Chaos' doing when the Chaos existed before the breach was first seen, and the
fault was active then or ended so recently that the breach could not have been seen earlier:
within the invariant's hold plus two observation intervals after the revert. Among several,
the latest injected wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from aiops.api import Chaos
from aiops.kube import CustomResources

LABEL_CHAOS = "aiops.dev/chaos"
"""On an Incident: the Chaos it was linked to (the Chaos lists its incidents by it)."""


def pick(
    items: Iterable[Chaos], since: datetime, now: datetime, hold: timedelta,
    interval: timedelta,
) -> Chaos | None:
    """The Chaos behind a breach first seen at `since` and opened as an Incident `now`."""
    best: Chaos | None = None
    for c in items:
        st = c.status
        if st.injected_at is None:
            continue
        created = c.metadata.creation_timestamp
        if created is not None and since < created:
            continue  # broken before the Chaos existed: not its doing
        if st.recovered_at is not None and now > st.recovered_at + hold + 2 * interval:
            continue
        if best is None or st.injected_at > (best.status.injected_at or st.injected_at):
            best = c
    return best


async def linked_chaos(
    api: CustomResources, namespace: str, subject: str, since: datetime, now: datetime,
    hold: timedelta, interval: timedelta,
) -> Chaos | None:
    items = await api.list(Chaos.PLURAL, namespace, field_selector=f"spec.subject={subject}")
    return pick(_valid(items), since, now, hold, interval)


def _valid(items: list[dict[str, Any]]) -> Iterator[Chaos]:
    for obj in items:
        try:
            yield Chaos.from_k8s(obj)
        except ValidationError:
            continue  # not of this operator's API: it injected nothing we know of
