"""What the campaign needs of the cluster, checked before anything is injected: each Subject
exists and its plugin loads, each fault is one of that plugin's with valid parameters and the
target it needs, each named key Secret holds its key. The error names the line and field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from aiops.api import ChaosTarget, Subject
from aiops.eval.campaign import LoadedCampaign
from aiops.eval.cluster import EvalApi
from aiops.subjects import registry
from aiops.subjects.contract import FaultTarget


@dataclass(frozen=True)
class SubjectFacts:
    key: str
    namespace: str
    name: str
    type: str
    before: dict[str, Any]
    """spec.autonomy and spec.agent as found, put back when the run ends."""


def check(loaded: LoadedCampaign, api: EvalApi) -> dict[str, SubjectFacts]:
    """The campaign's Subjects as found, by key (namespace/name)."""
    c = loaded.campaign
    facts: dict[str, SubjectFacts] = {}
    for i, entry in enumerate(c.subjects):
        ns = entry.namespace or c.namespace
        obj = api.get(Subject.PLURAL, ns, entry.name)
        if obj is None:
            raise loaded.error(
                ("subjects", i, "name"), f"no Subject {ns}/{entry.name} in the cluster"
            )
        spec = obj.get("spec") or {}
        type_name = str(spec.get("type", ""))
        try:
            plugin = registry.load(type_name)
        except registry.UnknownSubjectType as err:
            raise loaded.error(("subjects", i, "name"), str(err)) from err
        known = {f.name: f for f in plugin.faults}
        for j, fault in enumerate(c.faults):
            where = ("faults", j, "fault" if fault.fault else "name")
            spec_ = known.get(fault.plugin_fault)
            if spec_ is None:
                raise loaded.error(
                    where,
                    f"unknown fault {fault.plugin_fault!r}: the {type_name} plugin of Subject "
                    f"{ns}/{entry.name} has {', '.join(sorted(known)) or 'no faults'}",
                )
            try:
                spec_.params.model_validate(fault.params)
            except ValidationError as err:
                e = err.errors()[0]
                raise loaded.error(("faults", j, "params", *e["loc"]), e["msg"]) from err
            if spec_.target != FaultTarget.SUBJECT:
                if fault.target is None:
                    raise loaded.error(
                        ("faults", j),
                        f"fault {fault.plugin_fault} needs a target ({spec_.target.value}): "
                        "target: {member: NAME} or a selector",
                    )
                try:
                    ChaosTarget.model_validate(fault.target)
                except ValidationError as err:
                    e = err.errors()[0]
                    raise loaded.error(("faults", j, "target", *e["loc"]), e["msg"]) from err
        for k, variant in enumerate(c.variants):
            ref = variant.api_key_secret
            if ref is None:
                continue
            keys = api.secret_keys(ns, ref.name)
            if keys is None:
                raise loaded.error(
                    ("variants", k, "apiKeySecret", "name"), f"no Secret {ns}/{ref.name}"
                )
            if ref.key not in keys:
                raise loaded.error(
                    ("variants", k, "apiKeySecret", "key"),
                    f"Secret {ns}/{ref.name} has no key {ref.key!r}",
                )
        before = {"autonomy": spec.get("autonomy"), "agent": spec.get("agent")}
        facts[c.subject_key(entry)] = SubjectFacts(
            c.subject_key(entry), ns, entry.name, type_name, before
        )
    return facts
