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
from aiops.vocabulary import TargetState

LABEL_CHAOS = "aiops.dev/chaos"
"""On an Incident: the Chaos it was linked to (the Chaos lists its incidents by it)."""


def pick(
    items: Iterable[Chaos],
    since: datetime,
    now: datetime,
    hold: timedelta,
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


def injecting(items: Iterable[Chaos], since: datetime) -> Chaos | None:
    """A Chaos caught between claiming its targets and recording its injection (a plugin
    call takes a moment): a breach seen then is most likely its doing, not yet linkable."""
    for c in items:
        created = c.metadata.creation_timestamp
        if (
            c.status.injected_at is None
            and (created is None or created <= since)
            and any(t.state == TargetState.INJECTING for t in c.status.targets)
        ):
            return c
    return None


async def linked_chaos(
    api: CustomResources,
    namespace: str,
    subject: str,
    since: datetime,
    now: datetime,
    hold: timedelta,
    interval: timedelta,
) -> tuple[Chaos | None, Chaos | None]:
    """(the Chaos behind the breach, or a Chaos still injecting that may be)."""
    items = await api.list(Chaos.PLURAL, namespace, field_selector=f"spec.subject={subject}")
    valid = list(_valid(items))
    return pick(valid, since, now, hold, interval), injecting(valid, since)


def _valid(items: list[dict[str, Any]]) -> Iterator[Chaos]:
    for obj in items:
        try:
            yield Chaos.from_k8s(obj)
        except ValidationError:
            continue  # not of this operator's API: it injected nothing we know of
