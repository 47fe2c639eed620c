"""Toxics in toxiproxy, added and removed by name: the network faults on a path that runs
through a proxy (the rate limiter's nodes reach Redis through one).

A fault's toxic is named `aiops-chaos-<fault>`: adding it again updates it in place, and
removing it removes that toxic only, never one a person or another fault added."""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import Field

from aiops.subjects.contract import Frozen, PluginError
from aiops.subjects.faults import PREFIX

Stream = Literal["upstream", "downstream"]


def toxic_name(fault: str) -> str:
    return f"{PREFIX}{fault}"


class Toxic(Frozen):
    """One toxic as toxiproxy takes it. `upstream` is what the client sends, `downstream`
    what it gets back."""

    name: str
    type: Literal[
        "latency", "bandwidth", "timeout", "reset_peer", "slow_close", "slicer", "limit_data"
    ]
    stream: Stream = "downstream"
    attributes: dict[str, int] = Field(default_factory=dict)


def _text(resp: httpx.Response, most: int = 160) -> str:
    words = " ".join(resp.text.split())
    return words if len(words) <= most else words[:most] + "…"


class ToxiproxyApi:
    """toxiproxy's REST API for one proxy."""

    def __init__(self, http: httpx.AsyncClient, url: str, proxy: str, timeout: float) -> None:
        self.http = http
        self.base = url.rstrip("/")
        self.proxy = proxy
        self.timeout = timeout

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        url = f"{self.base}/proxies/{self.proxy}{path}"
        try:
            return await self.http.request(method, url, json=body, timeout=self.timeout)
        except httpx.HTTPError as err:
            raise PluginError(
                f"{method} {url}: toxiproxy unreachable ({type(err).__name__}: {err})"
            ) from err

    async def add(self, toxic: Toxic) -> str:
        """Adds the toxic, or sets its attributes when one of that name is there already;
        returns what was done, in words."""
        resp = await self._call("POST", "/toxics", toxic.model_dump())
        done = "added"
        if resp.status_code == 409:
            resp = await self._call(
                "POST", f"/toxics/{toxic.name}", {"attributes": toxic.attributes}
            )
            done = "updated"
        if resp.status_code == 404:
            raise PluginError(f"toxiproxy has no proxy {self.proxy!r} (toxiproxyProxy)")
        if resp.status_code >= 300:
            raise PluginError(
                f"toxiproxy refused toxic {toxic.name}: HTTP {resp.status_code} {_text(resp)}"
            )
        return f"toxic {toxic.name} ({toxic.type}, {toxic.stream}) {done}"

    async def remove(self, name: str) -> str:
        """Removes the toxic named `name`; a toxic (or proxy) already gone is a no-op that
        says so."""
        resp = await self._call("DELETE", f"/toxics/{name}")
        if resp.status_code == 404:
            return f"toxic {name} was already gone"
        if resp.status_code >= 300:
            raise PluginError(
                f"toxiproxy refused to remove toxic {name}: HTTP {resp.status_code} {_text(resp)}"
            )
        return f"toxic {name} removed"
