"""AIOPS_SHARD: which process owns a Subject, its Incidents and its Chaos."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from aiops.settings import OperatorSettings, SettingsError
from aiops.shard import Shard, owns_subject, owns_subject_of, shard_of


def memo(shard: str | None) -> SimpleNamespace:
    env = {"AIOPS_SHARD": shard} if shard else {}
    return SimpleNamespace(settings=OperatorSettings.from_env(env))


def test_every_subject_has_exactly_one_owner_among_the_shards() -> None:
    names = [(f"ns-{i % 3}", f"subject-{i}") for i in range(300)]
    shards = [Shard.model_validate(f"{i}/3") for i in range(3)]
    owners = [[s for s in shards if s.owns(ns, name)] for ns, name in names]
    assert all(len(o) == 1 for o in owners)
    counts = [sum(1 for o in owners if o[0] is s) for s in shards]
    assert min(counts) > 60, counts  # spread, not all on one (100 each expected)


def test_the_owner_is_the_same_in_every_process() -> None:
    # sha256, not Python's per-process salted hash(): pinned so a change is noticed (it would
    # move every Subject to another shard on upgrade).
    assert [shard_of("default", f"s{i}", 4) for i in range(6)] == [
        shard_of("default", f"s{i}", 4) for i in range(6)
    ]
    assert shard_of("default", "web", 1024) == 356
    assert {shard_of("prod", f"w{i}", 2) for i in range(20)} == {0, 1}


def test_a_subjects_incidents_and_chaos_belong_to_its_owner() -> None:
    memos = (memo("0/2"), memo("1/2"))
    for i in range(20):
        name = f"s{i}"
        mine = [m for m in memos if owns_subject(name, "ns", m)]
        assert len(mine) == 1
        for m in memos:
            assert owns_subject_of({"subject": name}, "ns", m) is (m is mine[0])
    # The same Subject name in another namespace is another Subject.
    assert {owns_subject("s1", ns, memo("0/2")) for ns in ("a", "b", "c", "d", "e")} == {
        True,
        False,
    }


def test_unsharded_owns_everything() -> None:
    assert owns_subject("anything", "ns", memo(None))
    assert owns_subject_of({}, "ns", memo(None))
    assert owns_subject("anything", "ns", SimpleNamespace())  # settings not loaded yet
    assert owns_subject("x", "ns", memo("0/1"))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2/2", "shard index 2 out of range: 0..1 of 2"),
        ("1/0", "0 shards: there must be 1 to 1024"),
        ("0/5000", "5000 shards: there must be 1 to 1024"),
        ("half", "not a shard like 0/2"),
        ("-1/2", "not a shard like 0/2"),
    ],
)
def test_a_bad_shard_stops_the_start_with_the_variable_named(value: str, message: str) -> None:
    with pytest.raises(SettingsError) as err:
        OperatorSettings.from_env({"AIOPS_SHARD": value})
    assert f"AIOPS_SHARD={value!r}" in str(err.value)
    assert message in str(err.value)
