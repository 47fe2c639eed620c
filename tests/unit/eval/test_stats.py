"""The report's statistics against published numbers, and the comparison's refusals."""

from __future__ import annotations

import pytest

from aiops.eval.stats import (
    Call,
    bootstrap_median,
    bootstrap_median_difference,
    compare_medians,
    compare_rates,
    wilson,
)


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3
# (score interval), and the 5-trial cases the campaigns here meet (textbook Wilson, z = 1.96).
@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (0, 5, 0.0, 0.4345),
        (5, 5, 0.5655, 1.0),
        (3, 5, 0.2307, 0.8824),
    ],
)
def test_wilson_matches_published_intervals(
    successes: int, trials: int, low: float, high: float
) -> None:
    interval = wilson(successes, trials)
    assert interval.value == pytest.approx(successes / trials)
    assert interval.low == pytest.approx(low, abs=1e-4)
    assert interval.high == pytest.approx(high, abs=1e-4)


@pytest.mark.parametrize(("successes", "trials"), [(0, 0), (6, 5), (-1, 5)])
def test_wilson_refuses_impossible_counts(successes: int, trials: int) -> None:
    with pytest.raises(ValueError, match=r"trial|successes"):
        wilson(successes, trials)


def test_bootstrap_median_is_deterministic_and_brackets_the_median() -> None:
    sample = [12.0, 15.5, 9.0, 30.0, 14.0, 13.0, 11.0]
    first, again = bootstrap_median(sample), bootstrap_median(sample)
    assert first == again
    assert first.value == 13.0
    assert first.low <= 13.0 <= first.high
    assert min(sample) <= first.low and first.high <= max(sample)
    # One value: nothing to resample, the interval is the point.
    assert bootstrap_median([4.0]) == bootstrap_median([4.0])
    assert (bootstrap_median([4.0]).low, bootstrap_median([4.0]).high) == (4.0, 4.0)


def test_median_difference_of_shifted_samples() -> None:
    a = [10.0, 11.0, 12.0, 13.0, 14.0]
    diff = bootstrap_median_difference(a, [x + 20 for x in a])
    assert diff.value == -20.0
    assert diff.high < 0


def test_compare_rates_takes_sides_only_on_separated_intervals() -> None:
    assert compare_rates(5, 5, 0, 5).call is Call.A_BETTER
    assert compare_rates(0, 5, 5, 5).call is Call.B_BETTER
    # 3/5 against 2/5: intervals [23%-88%] and [12%-77%] overlap.
    overlapping = compare_rates(3, 5, 2, 5)
    assert overlapping.call is Call.NOT_ENOUGH
    assert "overlap" in overlapping.why
    # A perfect record on 4 trials is still too few to call.
    assert compare_rates(4, 4, 0, 4).call is Call.NOT_ENOUGH
    assert compare_rates(5, 5, 5, 5).call is Call.NO_DIFFERENCE


def test_compare_medians_needs_trials_and_a_clear_difference() -> None:
    fast, slow = [10.0, 11.0, 12.0, 13.0, 14.0], [30.0, 31.0, 32.0, 33.0, 34.0]
    assert compare_medians(fast, slow).call is Call.A_BETTER
    assert compare_medians(slow, fast).call is Call.B_BETTER
    assert compare_medians(fast, [11.0, 12.0, 13.0, 10.0, 15.0]).call is Call.NOT_ENOUGH
    too_few = compare_medians(fast[:3], slow[:3])
    assert too_few.call is Call.NOT_ENOUGH and too_few.difference is None
