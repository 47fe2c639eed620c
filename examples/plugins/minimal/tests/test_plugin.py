"""The plugin on a real directory, no operator needed: `pytest examples/plugins/minimal/tests`."""

import asyncio
from pathlib import Path

from aiops.subjects.context import PluginContext
from aiops.subjects.contract import Frozen, MemberState
from minimal_subject.plugin import MemberParams, MinimalConfig, MinimalPlugin


def plugin(directory: Path) -> MinimalPlugin:
    (directory / "a.json").write_text('{"up": true, "queue": 150}')
    (directory / "b.json").write_text('{"up": true}')
    config = MinimalConfig.model_validate({"directory": str(directory), "members": ["a", "b", "c"]})
    return MinimalPlugin(config, PluginContext("test/minimal", prometheus=None, workload=None))


def test_a_member_without_a_file_is_down_and_a_long_queue_is_a_breach(tmp_path: Path) -> None:
    p = plugin(tmp_path)
    obs = asyncio.run(p.observe())
    assert [m.state for m in obs.members] == [MemberState.UP, MemberState.UP, MemberState.DOWN]
    found = p.evaluate(obs, {i.name: i for i in p.invariants})
    assert {(v.invariant, v.entity) for v in found} == {("member_down", "c"), ("queue_long", "a")}


def test_the_fault_stops_a_member_and_the_action_starts_it(tmp_path: Path) -> None:
    p, start = plugin(tmp_path), MemberParams(member="b")

    async def scenario() -> None:
        assert (await p.inject("stop_member", Frozen(), "b")).ok
        obs = await p.observe()
        assert obs.down_members()[0].name == "b"
        assert await p.preconditions("start_member", start, obs) == []
        assert (await p.execute("start_member", start, "incident/1")).ok
        assert await p.preconditions("start_member", start, obs) == ["b is up: nothing to start"]
        assert "no stop_member mark" in (await p.revert("stop_member", Frozen(), "b")).message
        assert [m.name for m in (await p.observe()).down_members()] == ["c"]

    asyncio.run(scenario())
