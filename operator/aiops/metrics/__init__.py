"""The operator's own Prometheus metrics, defined once (docs/operating.md lists each one).

Names follow Prometheus' conventions: an `aiops_` prefix, base units in the name (`_seconds`,
`_usd`), `_total` on counters. Labels are bounded sets: a Subject (`namespace/name`, as many
as there are Subjects), an invariant, an action or tool name from the registry, a gate check, a
backend and its configured model; never an incident's name, a free text or anything a model
chose (an unknown tool is `unknown`).

The loops, the agent, the action registry and the audit log call the recording functions
below at the one place each thing happens; gauges of what is open now are read, at scrape
time, from the objects the running daemons hold (`aiops.metrics.live`). This package imports
no other aiops package but the vocabulary, so that every layer may record into it.

Everything goes to prometheus_client's default registry, which `serve` exposes (with the
process and Python collectors it brings).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager

from prometheus_client import Counter, Histogram, disable_created_metrics

from aiops.metrics.live import LIVE
from aiops.metrics.server import MetricsServerError, serve
from aiops.vocabulary import Check, Outcome, Phase, Risk, Verdict

__all__ = [
    "LIVE",
    "MetricsServerError",
    "action_ran",
    "agent_investigated",
    "agent_turn",
    "audit_write",
    "incident_closed",
    "incident_opened",
    "observation",
    "proposal_judged",
    "serve",
    "subject_bound",
    "subject_id",
    "tool_called",
]

# Seconds. Detection takes an interval plus an invariant's hold (seconds to minutes);
# resolution adds an investigation, perhaps an approval, and verification (minutes to hours).
DETECT_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
RESOLVE_BUCKETS = (5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
OBSERVE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
ACTION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
AUDIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)

# No `_created` series beside each counter and histogram: they double what is scraped and no
# dashboard or alert here reads them.
disable_created_metrics()

ORIGINS = ("chaos", "breach")  # what TTD and TTR count from: a Chaos' injection, or the breach
CLOSED = (Phase.RESOLVED, Phase.ESCALATED)
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write")

INCIDENTS_OPENED = Counter(
    "aiops_incidents_opened_total",
    "Incidents the subject loop opened.",
    ["subject", "invariant"],
)
INCIDENTS_CLOSED = Counter(
    "aiops_incidents_closed_total",
    "Incidents that ended, by outcome (Resolved or Escalated).",
    ["subject", "invariant", "outcome"],
)
TIME_TO_DETECT = Histogram(
    "aiops_incident_time_to_detect_seconds",
    "From the fault (a Chaos' injection, else the breach first seen) to the Incident opened.",
    ["subject", "invariant", "origin"],
    buckets=DETECT_BUCKETS,
)
TIME_TO_RESOLVE = Histogram(
    "aiops_incident_time_to_resolve_seconds",
    "From the fault (a Chaos' injection, else the breach first seen) to Resolved.",
    ["subject", "invariant", "origin"],
    buckets=RESOLVE_BUCKETS,
)
AGENT_INVESTIGATIONS = Counter(
    "aiops_agent_investigations_total",
    "Investigations an agent finished, by outcome (plan or escalate).",
    ["backend", "model", "outcome"],
)
AGENT_TURNS = Counter(
    "aiops_agent_turns_total",
    "Model turns (answered requests).",
    ["backend", "model"],
)
AGENT_TOKENS = Counter(
    "aiops_agent_tokens_total",
    "Tokens as the model's usage fields count them, by kind (input, output, cache_read, "
    "cache_write).",
    ["backend", "model", "kind"],
)
AGENT_COST = Counter(
    "aiops_agent_cost_usd_total",
    "What the model's tokens cost at list prices, in US dollars.",
    ["backend", "model"],
)
TOOL_CALLS = Counter(
    "aiops_agent_tool_calls_total",
    "Tool calls of the model, by tool and result (ok or error: refused, invalid or failed).",
    ["tool", "result"],
)
ACTIONS = Counter(
    "aiops_actions_total",
    "Actions run on a Subject (the gate let them run), by action, risk and result.",
    ["action", "risk", "result"],
)
ACTION_DURATION = Histogram(
    "aiops_action_duration_seconds",
    "How long an action took to run.",
    ["action"],
    buckets=ACTION_BUCKETS,
)
PROPOSALS_REFUSED = Counter(
    "aiops_proposals_refused_total",
    "Proposed steps the policy gate refused, by the check that refused them.",
    ["check"],
)
OBSERVATION_DURATION = Histogram(
    "aiops_observation_duration_seconds",
    "How long the subject loop's observation of a Subject took (failed ones included).",
    ["subject"],
    buckets=OBSERVE_BUCKETS,
)
OBSERVATION_FAILURES = Counter(
    "aiops_observation_failures_total",
    "Observations of a Subject that failed or timed out.",
    ["subject"],
)
AUDIT_WRITE_DURATION = Histogram(
    "aiops_audit_write_duration_seconds",
    "How long appending one record to the audit log took (redaction, write, fsync).",
    buckets=AUDIT_BUCKETS,
)
AUDIT_WRITE_FAILURES = Counter(
    "aiops_audit_write_failures_total",
    "Audit records that could not be appended.",
)


def subject_id(namespace: str, name: str) -> str:
    """A Subject as its label says it: `namespace/name` (names repeat across namespaces)."""
    return f"{namespace}/{name}"


def _model(model: str | None) -> str:
    return model or "none"


# -- the subject loop -------------------------------------------------------------------------


def subject_bound(subject: str, invariants: Iterable[str]) -> None:
    """A Subject's series, at 0, from the moment it is watched: a counter that first appears
    at 1 shows no increase in PromQL, and a dashboard would show "no data" for an outcome that
    has not happened yet instead of 0."""
    OBSERVATION_FAILURES.labels(subject)
    for invariant in invariants:
        INCIDENTS_OPENED.labels(subject, invariant)
        for outcome in CLOSED:
            INCIDENTS_CLOSED.labels(subject, invariant, outcome)
        for origin in ORIGINS:
            TIME_TO_DETECT.labels(subject, invariant, origin)
            TIME_TO_RESOLVE.labels(subject, invariant, origin)
    LIVE.seen_subject(subject)


def observation(subject: str) -> AbstractContextManager[None]:
    """Times one observation; one that raises (or times out) counts as failed."""
    return _timed(OBSERVATION_DURATION.labels(subject), OBSERVATION_FAILURES.labels(subject))


def incident_opened(subject: str, invariant: str, origin: str, detect_seconds: float) -> None:
    INCIDENTS_OPENED.labels(subject, invariant).inc()
    TIME_TO_DETECT.labels(subject, invariant, origin).observe(max(detect_seconds, 0.0))


# -- the incident loop ------------------------------------------------------------------------


def incident_closed(
    subject: str, invariant: str, outcome: str, origin: str, resolve_seconds: float | None
) -> None:
    """`resolve_seconds`: for a Resolved incident whose fault time is known."""
    INCIDENTS_CLOSED.labels(subject, invariant, outcome).inc()
    if outcome == Phase.RESOLVED and resolve_seconds is not None:
        TIME_TO_RESOLVE.labels(subject, invariant, origin).observe(max(resolve_seconds, 0.0))


def proposal_judged(verdict: Verdict, check: Check | None) -> None:
    """Every judgement of a proposed step; only refusals are counted."""
    if verdict == Verdict.REFUSED:
        PROPOSALS_REFUSED.labels(check or "unknown").inc()


def agent_investigated(backend: str, model: str | None, outcome: str) -> None:
    AGENT_INVESTIGATIONS.labels(backend, _model(model), outcome).inc()


def agent_turn(backend: str, model: str | None, usage: Mapping[str, int], cost_usd: float) -> None:
    """One answered model request: `usage` as the agent reads the API's usage fields
    (`input_tokens`, `output_tokens`, `cache_read_tokens`, `cache_write_tokens`)."""
    model = _model(model)
    AGENT_TURNS.labels(backend, model).inc()
    for kind in TOKEN_KINDS:
        AGENT_TOKENS.labels(backend, model, kind).inc(max(int(usage.get(f"{kind}_tokens", 0)), 0))
    AGENT_COST.labels(backend, model).inc(max(cost_usd, 0.0))


def tool_called(tool: str, ok: bool) -> None:
    """`tool`: one of the agent's tools, or `unknown` (never a name a model made up)."""
    for result in ("ok", "error"):
        TOOL_CALLS.labels(tool, result)  # both series exist once the tool was called
    TOOL_CALLS.labels(tool, "ok" if ok else "error").inc()


def action_ran(action: str, risk: Risk | None, ok: bool, seconds: float) -> None:
    result = Outcome.SUCCEEDED if ok else Outcome.FAILED
    ACTIONS.labels(action, risk or "unknown", result).inc()
    ACTION_DURATION.labels(action).observe(max(seconds, 0.0))


# -- the audit log ----------------------------------------------------------------------------


def audit_write() -> AbstractContextManager[None]:
    """Times one append; one that raises counts as a failure."""
    return _timed(AUDIT_WRITE_DURATION, AUDIT_WRITE_FAILURES)


@contextmanager
def _timed(duration: Histogram, failures: Counter) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    except Exception:  # a cancelled task (the operator stopping) is no failure
        failures.inc()
        raise
    finally:
        duration.observe(time.monotonic() - started)
