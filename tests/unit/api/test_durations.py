"""Durations: one pattern, the same bounds in the model as in the CRD's CEL."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from aiops.api import Chaos, Subject, format_duration, to_timedelta


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("250ms", timedelta(milliseconds=250)),
        ("2h0m5s", timedelta(hours=2, seconds=5)),
        ("90m", timedelta(minutes=90)),
        ("0s", timedelta(0)),
    ],
)
def test_to_timedelta(text: str, expected: timedelta) -> None:
    assert to_timedelta(text) == expected


@pytest.mark.parametrize(
    "text", ["", "5", "-5s", "1.5h", "5 m", "1d", "5s1m", "1h1h", "ms", "s", "10 minutes", "PT5M"]
)
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        to_timedelta(text)


@given(st.integers(min_value=0, max_value=10**10).map(lambda ms: timedelta(milliseconds=ms)))
def test_format_and_parse_round_trip(value: timedelta) -> None:
    assert to_timedelta(format_duration(value)) == value


def test_format_is_canonical() -> None:
    assert format_duration(timedelta(seconds=5400)) == "1h30m"
    assert format_duration(timedelta(0)) == "0s"
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))


def subject(interval: str) -> dict[str, object]:
    return {"spec": {"type": "ratelimiter", "interval": interval}}


@pytest.mark.parametrize("interval", ["1s", "59m59s", "1h"])
def test_interval_bounds_are_inclusive(interval: str) -> None:
    assert Subject.from_k8s(subject(interval)).spec.interval == interval


@pytest.mark.parametrize("interval", ["0s", "999ms", "1h1ms", "2h"])
def test_interval_out_of_bounds_is_refused(interval: str) -> None:
    with pytest.raises(ValidationError, match="must be a duration between 1s and 1h"):
        Subject.from_k8s(subject(interval))


def test_chaos_duration_bounded_to_a_day() -> None:
    spec: dict[str, object] = {"subject": "rl", "fault": "kill", "target": {"member": "n1"}}
    body = {"spec": spec}
    assert Chaos.from_k8s(body).spec.duration == "1m"
    spec["duration"] = "24h1s"
    with pytest.raises(ValidationError, match="between 1s and 24h"):
        Chaos.from_k8s(body)
