"""One registry of actions: the core's `kubectl` and a plugin's own are found, run, dry-run and
undone through the same calls; the core's name cannot be taken over by a plugin."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import BaseModel, ConfigDict

from aiops import actions
from aiops.actions.kubectl import KubectlParams
from aiops.subjects.context import PluginContext
from aiops.subjects.contract import (
    ActionResult,
    ActionSpec,
    Invariant,
    Observation,
    Risk,
    SubjectPlugin,
    Violation,
)


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Toy(SubjectPlugin):
    type_name = "toy"
    config_model = NoParams
    invariants = ()
    runbook = ()
    actions = (
        ActionSpec(
            name="nudge", description="nudge it", params=NoParams, risk=Risk.LOW, reversible=True
        ),
        # A plugin naming its action like a core one does not replace the core's checks.
        ActionSpec(name="kubectl", description="not the core's", params=NoParams, risk=Risk.LOW),
    )

    def __init__(self) -> None:
        super().__init__(NoParams(), cast(PluginContext, None))
        self.calls: list[tuple[str, str, str]] = []

    async def observe(self) -> Observation:
        return Observation()

    def evaluate(self, obs: Observation, invariants: dict[str, Invariant]) -> list[Violation]:
        return []

    async def execute(self, action: str, params: BaseModel, key: str) -> ActionResult:
        self.calls.append(("execute", action, key))
        return ActionResult(ok=True, message="nudged")

    async def undo(self, action: str, params: BaseModel, key: str) -> ActionResult:
        self.calls.append(("undo", action, key))
        return ActionResult(ok=True, message="un-nudged")


@pytest.fixture
def kubectl(tmp_path: Path) -> Path:
    """A kubectl that records its argument vector, one line per call."""
    record = tmp_path / "calls"
    script = tmp_path / "kubectl"
    script.write_text(f'#!/bin/sh\necho "$*" >> {record}\necho done\n')
    script.chmod(0o755)
    return record


def test_actions_are_found_for_a_plugin_class_or_instance() -> None:
    for plugin in (Toy, Toy()):
        assert actions.find_action(plugin, "nudge") is Toy.actions[0]
        spec = actions.find_action(plugin, "kubectl")
        assert spec is not None and spec.params is KubectlParams and spec.risk is Risk.HIGH
        assert actions.find_action(plugin, "reboot-the-world") is None
    assert actions.action_names(Toy) == ["nudge", "kubectl", "kubectl"]
    assert actions.is_core("kubectl") and not actions.is_core("nudge")


async def test_a_plugin_action_runs_in_the_plugin_and_has_no_dry_run(kubectl: Path) -> None:
    toy = Toy()
    where = actions.Where("shop", str(kubectl.parent / "kubectl"))
    result = await actions.execute(toy, "nudge", NoParams(), "k-1", where)
    assert (result.ok, result.message) == (True, "nudged")
    assert await actions.dry_run("nudge", NoParams(), where) is None
    undone = await actions.undo(toy, "nudge", NoParams(), "k-1")
    assert undone.ok and toy.calls == [("execute", "nudge", "k-1"), ("undo", "nudge", "k-1")]
    assert not await asyncio.to_thread(kubectl.exists)  # kubectl never ran


async def test_the_kubectl_action_runs_kubectl_never_the_plugin(kubectl: Path) -> None:
    toy = Toy()
    params = KubectlParams(argv=["annotate", "configmap", "x", "a=b"])
    where = actions.Where("shop", str(kubectl.parent / "kubectl"))  # AIOPS_KUBECTL
    dry: Any = await actions.dry_run("kubectl", params, where)
    assert dry.ok, dry.message
    result = await actions.execute(toy, "kubectl", params, "k-2", where)
    assert result.ok, result.message
    assert toy.calls == []
    lines = (await asyncio.to_thread(kubectl.read_text)).splitlines()
    # The dry run asked, then the run's own dry run and the change itself.
    assert [("--dry-run=server" in line) for line in lines] == [True, True, False]
    assert all(line.startswith("--namespace=shop annotate") for line in lines)
    undone = await actions.undo(toy, "kubectl", params, "k-2")
    assert not undone.ok and "cannot be undone" in undone.message and toy.calls == []
