"""Durations on the monotonic clock: the wall clock is read once per anchor, so a later step
of it changes nothing."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from aiops import clock
from aiops.subjects.contract import utcnow


def test_a_wall_clock_step_after_the_first_look_changes_no_duration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    anchor = utcnow() - timedelta(seconds=5)
    first = clock.elapsed_since("t/step", anchor)
    assert timedelta(seconds=5) <= first < timedelta(seconds=6)
    for step in (timedelta(hours=1), -timedelta(hours=1)):
        stepped = utcnow() + step
        monkeypatch.setattr(clock, "utcnow", lambda stepped=stepped: stepped)
        again = clock.elapsed_since("t/step", anchor)
        assert first <= again < first + timedelta(seconds=1), step


def test_an_anchor_in_the_future_counts_from_zero_and_runs_on() -> None:
    anchor: datetime = utcnow() + timedelta(hours=1)
    assert clock.elapsed_since("t/future", anchor) == timedelta(0)
    time.sleep(0.05)
    assert clock.elapsed_since("t/future", anchor) >= timedelta(seconds=0.05)


def test_anchors_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "MAX_ANCHORS", 3)
    now = utcnow()
    for i in range(10):
        clock.elapsed_since(f"t/bound/{i}", now)
    assert len(clock._first_seen) <= 3


def test_a_new_anchor_under_a_key_starts_afresh_and_a_truncated_one_does_not() -> None:
    anchor = utcnow() - timedelta(seconds=30)
    assert clock.elapsed_since("t/reentry", anchor) >= timedelta(seconds=30)
    # The same instant as status keeps it, to the second: the same wait.
    assert clock.elapsed_since("t/reentry", anchor.replace(microsecond=0)) >= timedelta(seconds=30)
    # Entered again just now: a new wait.
    assert clock.elapsed_since("t/reentry", utcnow()) < timedelta(seconds=1)
