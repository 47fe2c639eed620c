"""Faults between the nodes and Redis, through toxiproxy's REST API (no client library: the
API is four calls). Used by the tests and meant for the operator's chaos faults."""

from __future__ import annotations

from typing import Any

import httpx

from ratelimiter.localstack.render import PROXY_NAME


class ToxiproxyError(RuntimeError):
    pass


class Toxiproxy:
    def __init__(self, url: str, proxy: str = PROXY_NAME, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.proxy = proxy
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            reply = httpx.request(method, self.url + path, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise ToxiproxyError(f"toxiproxy at {self.url} unreachable: {exc}") from None
        if reply.status_code >= 300:
            raise ToxiproxyError(f"{method} {path}: {reply.status_code} {reply.text.strip()}")
        return reply.json() if reply.content else None

    def state(self) -> dict[str, Any]:
        """The proxy: name, listen, upstream, enabled, toxics."""
        result: dict[str, Any] = self._call("GET", f"/proxies/{self.proxy}")
        return result

    def add_latency(
        self, latency_ms: int, jitter_ms: int = 0, name: str = "latency", stream: str = "downstream"
    ) -> None:
        """Delay every reply from Redis by `latency_ms` (± jitter)."""
        self._call(
            "POST",
            f"/proxies/{self.proxy}/toxics",
            {
                "name": name,
                "type": "latency",
                "stream": stream,
                "toxicity": 1.0,
                "attributes": {"latency": latency_ms, "jitter": jitter_ms},
            },
        )

    def remove_toxic(self, name: str = "latency") -> None:
        self._call("DELETE", f"/proxies/{self.proxy}/toxics/{name}")

    def set_enabled(self, enabled: bool) -> None:
        """Disabled: the proxy drops open connections and refuses new ones (a partition)."""
        self._call("POST", f"/proxies/{self.proxy}", {"enabled": enabled})

    def reset(self) -> None:
        """Every proxy enabled, every toxic gone."""
        self._call("POST", "/reset")
