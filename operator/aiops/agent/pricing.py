"""What a model's tokens cost, from a small table of list prices per model family.

Prices are USD per million tokens. Prompt caching bills cache writes (5-minute lifetime) at
1.25x the input price and cache reads at 0.1x. A model matching no entry costs 0, with a note,
rather than a guess: a wrong number looks authoritative in a report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    input: float
    output: float

    @property
    def cache_write(self) -> float:
        return self.input * 1.25

    @property
    def cache_read(self) -> float:
        return self.input * 0.1


# Longest matching prefix wins (`claude-opus-5-5` before `claude-opus-5`). List prices; Opus 4
# and 4.1 kept the old Opus price, Opus 4.5 onwards the new one.
PRICES: dict[str, Price] = {
    "claude-fable-5-2": Price(8.0, 40.0),
    "claude-fable-5-1": Price(10.0, 50.0),
    "claude-opus-5-5": Price(4.0, 20.0),
    "claude-opus-5": Price(5.0, 25.0),
    "claude-sonnet-5": Price(2.0, 10.0),  # Sonnet 5 and 5.5
    "claude-opus-4-0": Price(15.0, 75.0),
    "claude-opus-4-1": Price(15.0, 75.0),
    "claude-opus-4-2025": Price(15.0, 75.0),  # claude-opus-4-20250514
    "claude-opus-4": Price(5.0, 25.0),
    "claude-sonnet-4": Price(3.0, 15.0),
    "claude-haiku-4": Price(1.0, 5.0),
}


def price_of(model: str, prices: Mapping[str, Price] = PRICES) -> Price | None:
    matches = [prefix for prefix in prices if model.startswith(prefix)]
    return prices[max(matches, key=len)] if matches else None


def cost_usd(
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    prices: Mapping[str, Price] = PRICES,
) -> tuple[float, str | None]:
    """(cost, note): the note says why the cost is 0 when the model has no known price."""
    price = price_of(model, prices)
    if price is None:
        return 0.0, f"no price known for model {model!r}; cost recorded as 0"
    total = (
        input_tokens * price.input
        + output_tokens * price.output
        + cache_read_tokens * price.cache_read
        + cache_write_tokens * price.cache_write
    ) / 1_000_000
    return round(total, 6), None
