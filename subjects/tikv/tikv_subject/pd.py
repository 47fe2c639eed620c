"""An async client of PD's HTTP API over the context's shared httpx client.

Every failure becomes one `PluginError` whose message names the PD URL (credentials masked),
the request, and what was wrong with the answer: unreachable, an HTTP error with the start of
its body, something that is not JSON, or JSON that does not have PD's documented shape.
Reads fail over to the next PD URL; writes only when the request surely never left.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from aiops.subjects.contract import PluginError
from tikv_subject.pd_models import EvictLeaderConfig, RegionInfo, RegionsInfo, StoresInfo

API = "/pd/api/v1"
EVICT_LEADER = "evict-leader-scheduler"
REGION_CHECKS = ("miss-peer", "down-peer", "pending-peer")
# PD before 4.0 ran one scheduler per evicted store, named evict-leader-scheduler-<id>; later
# PDs run one evict-leader-scheduler whose config lists the stores. Both are read.
_PER_STORE_EVICT = re.compile(rf"^{EVICT_LEADER}-(\d+)$")

_Model = TypeVar("_Model", bound=BaseModel)
_SCHEDULERS = TypeAdapter(list[str] | None)


def redact_url(url: str) -> str:
    """The URL with any user:password replaced, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def snippet(text: str, limit: int = 120) -> str:
    """The start of a body, on one line, quoted: enough to recognise an HTML page or an
    error string without pasting a whole document into a condition."""
    flat = " ".join(text.split())
    return repr(flat[:limit] + ("…" if len(flat) > limit else ""))


def describe(err: httpx.HTTPError) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class PdError(PluginError):
    """PD could not answer; the message says which URL, which request and what went wrong."""


class PdClient:
    def __init__(self, urls: Sequence[str], http: httpx.AsyncClient, timeout: float) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.http = http
        self.timeout = timeout

    # -- transport ---------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        allow_404: bool = False,
    ) -> tuple[str, int, Any]:
        """(shown URL, status, decoded JSON). Tries each PD URL in turn, see the module doc."""
        writing = method != "GET"
        problems: list[str] = []
        for base in self.urls:
            shown = redact_url(base)
            try:
                resp = await self.http.request(method, base + path, json=body, timeout=self.timeout)
            except httpx.HTTPError as err:
                problems.append(f"{shown} unreachable ({describe(err)})")
                # A write that timed out may have been applied: never repeat it elsewhere.
                if writing and not isinstance(err, httpx.ConnectError | httpx.ConnectTimeout):
                    break
                continue
            if allow_404 and resp.status_code == 404:
                return shown, 404, None
            if resp.status_code >= 400:
                problems.append(f"{shown} answered HTTP {resp.status_code}: {snippet(resp.text)}")
                if writing or resp.status_code < 500:
                    break
                continue
            if writing:
                return shown, resp.status_code, None  # accepted; PD's answer is a courtesy
            try:
                return shown, resp.status_code, resp.json()
            except ValueError:
                kind = resp.headers.get("content-type", "no content-type")
                problems.append(
                    f"{shown} answered with something that is not JSON ({kind}): "
                    f"{snippet(resp.text)}"
                )
        raise PdError(f"PD {method} {path} failed: {'; '.join(problems)}")

    async def _get(self, path: str, model: type[_Model], what: str) -> _Model:
        shown, _, data = await self._call("GET", path)
        return _validate(model, data, f"PD at {shown} answered GET {path} with", what)

    # -- reads -------------------------------------------------------------------------------

    async def stores(self) -> StoresInfo:
        return await self._get(f"{API}/stores", StoresInfo, "PD's store list")

    async def region_check(self, check: str) -> RegionsInfo:
        path = f"{API}/regions/check/{check}"
        return await self._get(path, RegionsInfo, f"PD's {check} region list")

    async def region(self, region_id: int) -> RegionInfo | None:
        """The region, or None when PD does not know it (PD answers null, or 404 on some
        versions)."""
        path = f"{API}/region/id/{region_id}"
        shown, status, data = await self._call("GET", path, allow_404=True)
        if status == 404 or data is None or data == {}:
            return None
        if isinstance(data, dict) and data.get("id") == 0:
            return None
        return _validate(RegionInfo, data, f"PD at {shown} answered GET {path} with", "a region")

    async def schedulers(self) -> list[str]:
        path = f"{API}/schedulers"
        shown, _, data = await self._call("GET", path)
        try:
            return _SCHEDULERS.validate_python(data) or []
        except ValidationError as err:
            raise PdError(
                f"PD at {shown} answered GET {path} with JSON that is not a list of scheduler "
                f"names: {_problems(err)}"
            ) from err

    async def evictions(self) -> tuple[list[str], set[int]]:
        """(running scheduler names, ids of the stores whose leaders are being evicted)."""
        names = await self.schedulers()
        stores = {int(m.group(1)) for n in names if (m := _PER_STORE_EVICT.match(n))}
        if EVICT_LEADER in names:
            path = f"{API}/scheduler-config/{EVICT_LEADER}/list"
            shown, status, data = await self._call("GET", path, allow_404=True)
            # 404: the last eviction was removed between the two reads.
            if status != 404:
                conf = _validate(
                    EvictLeaderConfig,
                    data,
                    f"PD at {shown} answered GET {path} with",
                    "the evict-leader scheduler's config",
                )
                stores |= set(conf.store_id_ranges)
        return names, stores

    # -- writes ------------------------------------------------------------------------------

    async def add_evict_leader(self, store_id: int) -> None:
        # Adding it for a store that already has one updates the config: idempotent.
        await self._call(
            "POST", f"{API}/schedulers", body={"name": EVICT_LEADER, "store_id": store_id}
        )

    async def remove_evict_leader(self, store_id: int) -> bool:
        """Stop evicting leaders from the store: True if an eviction was removed, False if
        there was none. PD versions differ in how they answer for an absent one (404, or 500
        "scheduler not found"), so a failed delete is checked against the list."""
        try:
            _, status, _ = await self._call(
                "DELETE", f"{API}/schedulers/{EVICT_LEADER}-{store_id}", allow_404=True
            )
        except PdError:
            _, evicted = await self.evictions()
            if store_id not in evicted:
                return False
            raise
        return status != 404

    async def transfer_leader(self, region_id: int, to_store: int) -> None:
        await self._call(
            "POST",
            f"{API}/operators",
            body={"name": "transfer-leader", "region_id": region_id, "to_store_id": to_store},
        )


def _problems(err: ValidationError, limit: int = 3) -> str:
    items = [
        f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}"
        for e in err.errors(include_url=False)[:limit]
    ]
    more = err.error_count() - limit
    return "; ".join(items) + (f" (and {more} more)" if more > 0 else "")


def _validate(model: type[_Model], data: Any, prefix: str, what: str) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise PdError(f"{prefix} JSON that is not {what}: {_problems(err)}") from err
