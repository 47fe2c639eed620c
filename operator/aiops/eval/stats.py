"""The statistics an evaluation report and `aiops eval compare` rest on, in plain Python.

Campaigns here run 5-20 trials per fault and variant, so every rate comes with an interval that
says how little 5 trials prove, and a comparison says "not enough trials" rather than crown a
winner by noise:

- a win rate's interval is Wilson's score interval: unlike the normal approximation it stays
  inside [0, 1] and is not zero-width at 0/n or n/n (Brown, Cai and DasGupta 2001 recommend it
  for small n);
- a median's interval, and that of a difference of two medians, is a percentile bootstrap with
  a fixed seed, so a report re-run on the same database prints the same numbers.

No numpy: the samples are tiny and the report's numbers must not depend on the optional
plotting extra being installed.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

Z95 = 1.959963984540054
"""The standard normal quantile for a two-sided 95 % interval."""

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 13
"""Fixed, so that a report or a comparison is the same every time it is made from one DB."""

MIN_TRIALS = 5
"""Fewer trials than this on either side, and a comparison does not take sides at all."""


@dataclass(frozen=True)
class Interval:
    """A point estimate with its (two-sided, 95 %) confidence interval."""

    value: float
    low: float
    high: float

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high

    def fmt(self, spec: str = ".0%") -> str:
        """`60% [23%-88%]`: how the report and compare print it."""
        return f"{self.value:{spec}} [{self.low:{spec}}-{self.high:{spec}}]"


def wilson(successes: int, trials: int, z: float = Z95) -> Interval:
    """Wilson's score interval for `successes` out of `trials` (the point is the plain rate)."""
    if trials <= 0:
        raise ValueError(f"a rate needs at least one trial, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be within 0..{trials}, got {successes}")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # Clamp the rounding error at the edges (0/n gives low = -1e-17).
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def _percentiles(values: list[float], low_q: float, high_q: float) -> tuple[float, float]:
    ordered = sorted(values)
    last = len(ordered) - 1

    def at(q: float) -> float:
        # Linear interpolation between order statistics (numpy's default, "linear").
        pos = q * last
        lo = math.floor(pos)
        hi = min(lo + 1, last)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

    return at(low_q), at(high_q)


def bootstrap_median(
    sample: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> Interval:
    """The sample's median with a percentile-bootstrap interval (seeded: deterministic)."""
    data = [float(x) for x in sample]
    if not data:
        raise ValueError("a median needs at least one value")
    rng = random.Random(seed)
    n = len(data)
    medians = [statistics.median(rng.choices(data, k=n)) for _ in range(resamples)]
    alpha = (1 - level) / 2
    low, high = _percentiles(medians, alpha, 1 - alpha)
    return Interval(statistics.median(data), low, high)


def bootstrap_median_difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> Interval:
    """median(a) - median(b), with a percentile-bootstrap interval resampling each side."""
    xa, xb = [float(x) for x in a], [float(x) for x in b]
    if not xa or not xb:
        raise ValueError("a difference of medians needs at least one value on each side")
    rng = random.Random(seed)
    diffs = [
        statistics.median(rng.choices(xa, k=len(xa)))
        - statistics.median(rng.choices(xb, k=len(xb)))
        for _ in range(resamples)
    ]
    alpha = (1 - level) / 2
    low, high = _percentiles(diffs, alpha, 1 - alpha)
    return Interval(statistics.median(xa) - statistics.median(xb), low, high)


class Call(StrEnum):
    """What a comparison of A with B concludes about one measure."""

    A_BETTER = "A better"
    B_BETTER = "B better"
    NO_DIFFERENCE = "no difference"
    NOT_ENOUGH = "not enough trials"


@dataclass(frozen=True)
class RateComparison:
    a: Interval
    b: Interval
    n_a: int
    n_b: int
    call: Call
    why: str


def compare_rates(
    wins_a: int, n_a: int, wins_b: int, n_b: int, *, min_trials: int = MIN_TRIALS
) -> RateComparison:
    """Which side wins more often. Sides only when both have `min_trials` and the Wilson
    intervals do not overlap (conservative: a real but small difference reads as 'not enough
    trials', never as a win). Equal rates on enough trials are 'no difference'."""
    if n_a <= 0 or n_b <= 0:
        raise ValueError("each side needs at least one trial")
    ia, ib = wilson(wins_a, n_a), wilson(wins_b, n_b)
    if min(n_a, n_b) < min_trials:
        return RateComparison(
            ia, ib, n_a, n_b, Call.NOT_ENOUGH, f"fewer than {min_trials} trials on a side"
        )
    if not ia.overlaps(ib):
        call = Call.A_BETTER if ia.value > ib.value else Call.B_BETTER
        return RateComparison(ia, ib, n_a, n_b, call, "the 95% intervals do not overlap")
    if wins_a * n_b == wins_b * n_a:
        return RateComparison(ia, ib, n_a, n_b, Call.NO_DIFFERENCE, "the same rate on both sides")
    return RateComparison(ia, ib, n_a, n_b, Call.NOT_ENOUGH, "the 95% intervals overlap")


@dataclass(frozen=True)
class MedianComparison:
    a: Interval | None
    b: Interval | None
    difference: Interval | None
    call: Call
    why: str


def compare_medians(
    a: Sequence[float], b: Sequence[float], *, min_trials: int = MIN_TRIALS
) -> MedianComparison:
    """Which side's median is lower (faster). Sides only when both have `min_trials` values
    and the bootstrap interval of median(a) - median(b) excludes zero."""
    ia = bootstrap_median(a) if a else None
    ib = bootstrap_median(b) if b else None
    if min(len(a), len(b)) < min_trials:
        return MedianComparison(
            ia, ib, None, Call.NOT_ENOUGH, f"fewer than {min_trials} values on a side"
        )
    diff = bootstrap_median_difference(a, b)
    if diff.high < 0:
        return MedianComparison(ia, ib, diff, Call.A_BETTER, "the difference's interval < 0")
    if diff.low > 0:
        return MedianComparison(ia, ib, diff, Call.B_BETTER, "the difference's interval > 0")
    return MedianComparison(ia, ib, diff, Call.NOT_ENOUGH, "the difference's interval includes 0")
