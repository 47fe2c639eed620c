"""The campaign file (`CAMPAIGN.yaml`): subjects x faults x variants x trials, and the timings.

Checked here without a cluster: the shape (every field known, `trials` at least 1, durations
well formed, names unique), and that an anthropic variant has a key. What needs the cluster
(the Subjects exist, their plugins have the faults, the faults' parameters) is checked by
`aiops.eval.preflight`. Either way the error names the file, the line and the field, and
nothing has been injected yet.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from aiops.api import to_timedelta
from aiops.api.common import Identifier, Name
from aiops.api.durations import Cooldown, Duration, FaultDuration
from aiops.eval import yamllines
from aiops.eval.records import Backend, VariantInfo
from aiops.vocabulary import Autonomy

API_KEY_ENV = "ANTHROPIC_API_KEY"


class CampaignError(ValueError):
    """A campaign that cannot run: `file:line: field: what is wrong`."""


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class SecretKey(_Model):
    """A key of a Secret in the Subject's namespace."""

    name: Name
    key: str = Field(min_length=1, max_length=253)


class SubjectEntry(_Model):
    """A Subject that exists; the run changes only its autonomy and agent (and puts them back)."""

    name: Name
    namespace: Name | None = Field(default=None, description="Default: the campaign's.")


class FaultEntry(_Model):
    """A Chaos template: what each trial of this fault creates."""

    name: Identifier = Field(description="The entry's name (reports group by it).")
    fault: Identifier | None = Field(
        default=None, description="The plugin's fault; default: the entry's name."
    )
    target: dict[str, Any] | None = Field(
        default=None, description="The Chaos' spec.target (member or selector)."
    )
    params: dict[str, Any] = Field(default_factory=dict)
    duration: FaultDuration = Field(
        default="30s", description="How long the fault is held unless the trial ends it sooner."
    )

    @property
    def plugin_fault(self) -> str:
        return self.fault or self.name


class Variant(_Model):
    """How the agent is set up on the Subject for a trial."""

    name: Identifier
    baseline: bool = Field(
        default=False, description="The agent does not act (autonomy observe): the control."
    )
    backend: Backend = Backend.RUNBOOK
    model: str | None = Field(default=None, max_length=256)
    prompt_addendum: str | None = Field(
        default=None, max_length=4096, description="Added to the anthropic agent's system prompt."
    )
    autonomy: Autonomy | None = Field(
        default=None, description="Default: execute, or observe for a baseline."
    )
    max_turns: int | None = Field(default=None, ge=1, le=100)
    approve: bool = Field(
        default=False,
        description="The run approves every step that waits for an Approval, as the "
        "kubeconfig's user (time in approval is then the loop's, not a person's).",
    )
    subjects: list[str] | None = Field(
        default=None,
        description="Only on these of the campaign's Subjects (name or namespace/name); "
        "default: every one. Pinning variants to twin Subjects runs them side by side.",
    )
    api_key_secret: SecretKey | None = Field(
        default=None,
        description="Where the anthropic key is; default: a Secret the run makes from "
        f"{API_KEY_ENV}.",
    )

    @model_validator(mode="after")
    def _baseline_does_not_act(self) -> Self:
        if self.baseline and self.autonomy not in (None, Autonomy.OBSERVE):
            raise ValueError("a baseline variant does not act: leave autonomy out (observe)")
        if self.baseline and self.approve:
            raise ValueError("a baseline variant does not act: approve must be false")
        return self

    @property
    def effective_autonomy(self) -> Autonomy:
        if self.baseline:
            return Autonomy.OBSERVE
        return self.autonomy or Autonomy.EXECUTE

    def info(self) -> VariantInfo:
        return VariantInfo(
            name=self.name,
            backend=self.backend,
            model=self.model,
            prompt_addendum=self.prompt_addendum,
            autonomy=self.effective_autonomy.value,
            max_turns=self.max_turns,
            baseline=self.baseline or self.effective_autonomy == Autonomy.OBSERVE,
        )


class Timeouts(_Model):
    healthy: Duration = Field(
        default="60s",
        description="Before injecting: how long to wait for the Subject to be Healthy with "
        "no open Incident; after the Incident ended: how long for it to be healthy again.",
    )
    detect: Duration = Field(
        default="60s",
        description="From the injection to its Incident; none by then: timeout.",
    )
    trial: Duration = Field(
        default="5m", description="From the injection to the Incident's end; later: timeout."
    )


class Campaign(_Model):
    name: Identifier
    namespace: Name = "default"
    subjects: list[SubjectEntry] = Field(min_length=1)
    faults: list[FaultEntry] = Field(min_length=1)
    variants: list[Variant] = Field(min_length=1)
    trials: int = Field(ge=1, le=1000, description="Trials per subject, fault and variant.")
    cooldown: Cooldown = Field(default="5s", description="Pause after each trial.")
    timeouts: Timeouts = Field(default_factory=Timeouts)
    parallel: bool = Field(
        default=True, description="Run independent Subjects at the same time (one trial each)."
    )

    def runs_on(self, variant: Variant, s: SubjectEntry) -> bool:
        return variant.subjects is None or bool(
            {s.name, self.subject_key(s)} & set(variant.subjects)
        )

    def subject_key(self, s: SubjectEntry) -> str:
        return f"{s.namespace or self.namespace}/{s.name}"

    def seconds(self, value: str) -> float:
        return to_timedelta(value).total_seconds()

    def timings(self) -> dict[str, float]:
        t = self.timeouts
        return {
            "healthy_s": self.seconds(t.healthy),
            "detect_s": self.seconds(t.detect),
            "trial_s": self.seconds(t.trial),
            "cooldown_s": self.seconds(self.cooldown),
        }


class LoadedCampaign(BaseModel):
    """A campaign as read from its file: the model, the text (stored with the run), and where
    each field was written (for errors found later, against the cluster)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    text: str
    campaign: Campaign
    lines: dict[yamllines.Path, int]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def error(self, path: tuple[str | int, ...], message: str) -> CampaignError:
        return error_at(self.path, self.lines, path, message)


def error_at(
    file: Path, lines: dict[yamllines.Path, int], path: yamllines.Path, message: str
) -> CampaignError:
    """`file:line: field: message`, the line being the field's (or its parent's when the
    field is missing)."""
    line = yamllines.line_of(lines, path)
    return CampaignError(f"{file}:{line or '?'}: {_dotted(path) or '(campaign)'}: {message}")


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def load(path: Path, api_key: str | None = None) -> LoadedCampaign:
    """Reads and checks the campaign at `path`; a CampaignError names the line and field.
    `api_key`: the workstation's Anthropic key (aiops.settings), which an anthropic variant
    without a Secret of its own needs."""
    try:
        text = path.read_text()
    except OSError as err:
        raise CampaignError(f"{path}: cannot read: {err.strerror or err}") from err
    return parse(text, path, api_key)


def parse(text: str, path: Path, api_key: str | None = None) -> LoadedCampaign:
    try:
        data, lines = yamllines.load(text)
    except yamllines.YamlError as err:
        raise CampaignError(f"{path}: {err}") from err
    if not isinstance(data, dict):
        raise CampaignError(f"{path}:1: (campaign): must be a mapping (name, subjects, ...)")
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(first["loc"])
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        elif first["type"] in ("enum", "literal_error"):
            message = f"{message} (got {first.get('input')!r})"
        more = len(err.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise error_at(path, lines, loc, message + suffix) from err
    loaded = LoadedCampaign(path=path, text=text, campaign=campaign, lines=lines)
    _check_unique(loaded)
    _check_pins(loaded)
    _check_keys(loaded, api_key)
    return loaded


def _check_unique(loaded: LoadedCampaign) -> None:
    c = loaded.campaign
    for what, names in (
        ("faults", [f.name for f in c.faults]),
        ("variants", [v.name for v in c.variants]),
        ("subjects", [c.subject_key(s) for s in c.subjects]),
    ):
        for i, name in enumerate(names):
            if name in names[:i]:
                raise loaded.error((what, i, "name"), f"{name!r} is named twice in {what}")


def _check_pins(loaded: LoadedCampaign) -> None:
    c = loaded.campaign
    known = {n for s in c.subjects for n in (s.name, c.subject_key(s))}
    for i, v in enumerate(c.variants):
        for j, name in enumerate(v.subjects or []):
            if name not in known:
                raise loaded.error(
                    ("variants", i, "subjects", j),
                    f"unknown subject {name!r}: not one of the campaign's subjects "
                    f"({', '.join(sorted(c.subject_key(s) for s in c.subjects))})",
                )


def _check_keys(loaded: LoadedCampaign, api_key: str | None) -> None:
    for i, v in enumerate(loaded.campaign.variants):
        no_key = not (api_key or "").strip()
        if v.backend == Backend.ANTHROPIC and v.api_key_secret is None and no_key:
            raise loaded.error(
                ("variants", i, "backend"),
                f"variant {v.name!r} uses the anthropic backend and no key is given: "
                f"set {API_KEY_ENV}, or name a Secret in apiKeySecret",
            )


def cooldown_delta(campaign: Campaign) -> timedelta:
    return to_timedelta(campaign.cooldown)
