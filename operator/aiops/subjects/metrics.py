"""PromQL for plugins: instant and range queries, with every failure (unreachable, HTTP error,
garbage JSON, an unexpected result type) turned into one `MetricsError` with a clear message."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta

from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry


class MetricsError(Exception):
    """Prometheus could not answer a query; the message says why."""


Sample = tuple[dict[str, str], float]


class Prometheus:
    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        # No client-side retries: one observation is one attempt, and the loop comes back.
        self._client = PrometheusConnect(url=self.url, disable_ssl=True, retry=Retry(total=0))

    async def query(self, promql: str) -> list[Sample]:
        """An instant vector query: a list of (labels, value). NaN values are dropped."""
        try:
            raw = await asyncio.wait_for(
                asyncio.to_thread(
                    # Prometheus takes whole units here: "5.0s" is answered with a 400.
                    self._client.custom_query,
                    promql,
                    params={"timeout": f"{max(1, math.ceil(self.timeout))}s"},
                ),
                timeout=self.timeout + 1,
            )
        except TimeoutError as err:
            raise MetricsError(f"Prometheus at {self.url} did not answer in time") from err
        except Exception as err:  # the client raises requests, JSON and its own errors
            raise MetricsError(
                f"Prometheus at {self.url} failed the query {promql!r}: {type(err).__name__}: "
                f"{str(err)[:300]}"
            ) from err
        return _samples(raw, promql)

    async def query_range(
        self, promql: str, start: datetime, end: datetime, step: timedelta
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        try:
            raw = await asyncio.to_thread(
                # Whole seconds: Prometheus answers "60.0s" with a 400.
                self._client.custom_query_range,
                promql,
                start,
                end,
                f"{max(1, int(step.total_seconds()))}s",
            )
        except Exception as err:  # as above: one error type, the query named
            raise MetricsError(f"Prometheus range query {promql!r} failed: {err}") from err
        if not isinstance(raw, list):
            raise MetricsError(f"Prometheus answered {promql!r} with {type(raw).__name__}")
        out = []
        for series in raw:
            try:
                points = [(float(t), float(v)) for t, v in series["values"]]
                out.append((dict(series.get("metric", {})), points))
            except (KeyError, TypeError, ValueError) as err:
                raise MetricsError(f"Prometheus returned a malformed series: {err}") from err
        return out


def _samples(raw: object, promql: str) -> list[Sample]:
    if not isinstance(raw, list):
        raise MetricsError(
            f"Prometheus answered {promql!r} with a {type(raw).__name__}, not a vector"
        )
    out: list[Sample] = []
    for item in raw:
        try:
            labels = dict(item["metric"])
            value = float(item["value"][1])
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise MetricsError(f"Prometheus returned a malformed sample for {promql!r}") from err
        if not math.isnan(value):
            out.append((labels, value))
    return out
