"""Durations on the wire: Go-style strings such as `30s`, `5m` or `1h30m`.

One pattern serves every duration field. The API server checks it twice: the schema's
`pattern`, and a CEL rule that bounds the value with Kubernetes CEL's `duration()`. The
pydantic side applies the same pattern and the same bounds, so a manifest the model accepts is
one the API server accepts, and `to_timedelta` turns a checked string into a `timedelta`.
"""

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from pydantic import StringConstraints
from pydantic.json_schema import JsonSchemaValue

from aiops.api.common import KubeAnnotation

# Units largest first, each at most once, at least one: RE2 (the API server), Rust (pydantic)
# and Python all read it the same way. RE2 has no look-ahead, hence the alternation that
# spells "non-empty" out. No sign and no fractions: a negative duration is never meaningful
# here, and `90m` says what `1.5h` says.
DURATION_PATTERN = (
    r"^([0-9]+h([0-9]+m)?([0-9]+s)?([0-9]+ms)?"
    r"|[0-9]+m([0-9]+s)?([0-9]+ms)?"
    r"|[0-9]+s([0-9]+ms)?"
    r"|[0-9]+ms)$"
)
# Long enough for any sane value (`999h59m59s999ms` is 15); a bound keeps CEL's cost low.
DURATION_MAX_LENGTH = 32

_UNIT = re.compile(r"([0-9]+)(ms|h|m|s)")
_MS_PER_UNIT = {"h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
_DURATION = re.compile(DURATION_PATTERN)


def to_timedelta(value: str) -> timedelta:
    """The `timedelta` a duration string stands for; ValueError when it is not one."""
    if not _DURATION.fullmatch(value):
        raise ValueError(f"{value!r} is not a duration like 30s, 5m or 1h30m")
    return timedelta(milliseconds=sum(int(n) * _MS_PER_UNIT[u] for n, u in _UNIT.findall(value)))


def format_duration(value: timedelta) -> str:
    """The canonical string for a non-negative `timedelta` (`5400s` -> `1h30m`), to the
    millisecond (finer parts are dropped: no duration here is that fine)."""
    # Integer division, not total_seconds(): a float loses milliseconds past a few days.
    ms = value // timedelta(milliseconds=1)
    if ms < 0:
        raise ValueError(f"{value} is negative; durations here are never negative")
    parts = []
    for unit, size in _MS_PER_UNIT.items():
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class DurationBounds(KubeAnnotation):
    """Annotation: a duration between `minimum` and `maximum`, inclusive, on both sides.

    The CEL rule first re-checks the pattern because the API server evaluates CEL even when
    `pattern` already failed, and `duration()` of a malformed string is an evaluation error
    instead of a message a person can act on.
    """

    minimum: str
    maximum: str

    @property
    def message(self) -> str:
        return f"must be a duration between {self.minimum} and {self.maximum}"

    @property
    def cel(self) -> str:
        return (
            f"!self.matches('{DURATION_PATTERN}') || "
            f"(duration(self) >= duration('{self.minimum}') && "
            f"duration(self) <= duration('{self.maximum}'))"
        )

    def check(self, value: Any) -> Any:
        if not to_timedelta(self.minimum) <= to_timedelta(value) <= to_timedelta(self.maximum):
            raise ValueError(f"{value} {self.message}")
        return value

    def extend(self, json_schema: JsonSchemaValue) -> None:
        json_schema.setdefault("x-kubernetes-validations", []).append(
            {"rule": self.cel, "message": self.message}
        )


Duration = Annotated[
    str, StringConstraints(pattern=DURATION_PATTERN, max_length=DURATION_MAX_LENGTH)
]
"""Any well-formed duration; use one of the bounded aliases below for a field."""

Interval = Annotated[Duration, DurationBounds("1s", "1h")]
"""How often something repeats: between 1s and 1h."""

GracePeriod = Annotated[Duration, DurationBounds("0s", "1h")]
"""How long to tolerate something before acting: between 0s and 1h."""

Hold = Annotated[Duration, DurationBounds("0s", "24h")]
"""How long a condition must hold before it counts: between 0s and 24h."""

TimeBudget = Annotated[Duration, DurationBounds("1s", "1h")]
"""Wall-clock budget for one piece of work: between 1s and 1h."""

Cooldown = Annotated[Duration, DurationBounds("0s", "1h")]
"""Quiet time after an action before the next one: between 0s and 1h."""

ApprovalTimeout = Annotated[Duration, DurationBounds("10s", "168h")]
"""How long a proposal waits for a person: between 10s and a week."""

FaultDuration = Annotated[Duration, DurationBounds("1s", "24h")]
"""How long an injected fault lasts before it is reverted: between 1s and 24h."""
