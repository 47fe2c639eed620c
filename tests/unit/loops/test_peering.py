"""Peering priorities: the replica that joined first is the active one (kopf: the highest
priority wins), and two replicas joining in the same millisecond still differ (a shared
priority would pause both), bar a one-in-a-thousand draw."""

from __future__ import annotations

import time

from aiops.loops.peering import LIFETIME, keepalive, priority_now


def test_an_earlier_join_outranks_a_later_one_and_none_tie() -> None:
    first = priority_now()
    time.sleep(0.002)
    later = priority_now()
    assert first > later
    same_moment = {priority_now() for _ in range(200)}
    assert len(same_moment) > 150  # a random sub-millisecond part keeps them apart


def test_a_keepalive_is_what_kopf_writes_and_lives_less_than_the_takeover_bound() -> None:
    entry = keepalive(priority=-5)
    assert entry["priority"] == -5 and entry["lifetime"] == LIFETIME
    assert {"priority", "lifetime", "lastseen"} == set(entry)
    assert LIFETIME + 5 < 30  # dead after LIFETIME, re-listed in a few seconds: under 30 s
