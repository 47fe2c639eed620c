"""The invariant checks every plugin writes: a member observed Down, and a metric per entity
past its threshold; and `evaluate_rules`, which runs one rule per invariant. All pure, like
`SubjectPlugin.evaluate`: they read an Observation and return Violations.

A plugin's own rules stay where they are subject-specific (grouping breaches that share a
cause, reading facts); these do the counting, ordering and Violation-making around them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiops.subjects.contract import Invariant, Member, Observation, Violation

Rule = Callable[[Observation, Invariant], list[Violation]]
"""One invariant's check: its breaches in an observation."""


def threshold(inv: Invariant, default: float) -> float:
    """The invariant's threshold as the Subject tuned it (spec.invariants), else `default`."""
    return inv.threshold if inv.threshold is not None else default


def above(value: float, limit: float) -> bool:
    return value > limit


def below(value: float, limit: float) -> bool:
    return value < limit


def members_down(
    obs: Observation,
    inv: Invariant,
    summary: Callable[[Member], str],
    evidence: Callable[[Member], str],
) -> list[Violation]:
    """One violation per member observed Down, its name the entity, in the observation's
    order."""
    return [
        Violation(
            invariant=inv.name,
            entity=m.name,
            severity=inv.severity,
            summary=summary(m),
            evidence=[evidence(m)],
        )
        for m in obs.down_members()
    ]


def over_threshold(
    obs: Observation,
    inv: Invariant,
    metric: str,
    *,
    default: float,
    summary: Callable[[str, float, float], str],
    evidence: Callable[[str, float], list[str]] = lambda entity, value: [],
    breached: Callable[[float, float], bool] = above,
) -> list[Violation]:
    """One violation per entity whose value of `metric` breaches the invariant's threshold
    (`default` unless the Subject sets one), sorted by entity, carrying the value.
    `summary(entity, value, threshold)` and `evidence(entity, value)` say it in the subject's
    words; `breached(value, threshold)` is `above` unless a low value is the bad one
    (`below`)."""
    limit = threshold(inv, default)
    return [
        Violation(
            invariant=inv.name,
            entity=entity,
            severity=inv.severity,
            value=value,
            summary=summary(entity, value, limit),
            evidence=evidence(entity, value),
        )
        for entity, value in sorted(obs.metrics.get(metric, {}).items())
        if breached(value, limit)
    ]


def evaluate_rules(
    obs: Observation, invariants: Mapping[str, Invariant], rules: Mapping[str, Rule]
) -> list[Violation]:
    """Every given invariant's rule, in the invariants' order. An invariant with no rule here
    finds nothing (the core's own, such as observation_failed, are judged by the core)."""
    out: list[Violation] = []
    for name, inv in invariants.items():
        rule = rules.get(name)
        if rule is not None:
            out.extend(rule(obs, inv))
    return out
