"""An async client of PD's HTTP API over the context's shared httpx client.

Every failure becomes one `PluginError` whose message names the PD URL (credentials masked),
the request, and what was wrong with the answer: unreachable, late (each request to one PD is
bounded as a whole, connecting to the last byte), too big, an HTTP error with the start of its
body, something that is not JSON, or JSON that does not have PD's shape. GET and DELETE
(idempotent) move on to the next PD URL after any failure, an answer of the wrong shape
included (for a read it is as good as none); a POST only when it surely never left. Shapes
and semantics follow PD's source (tikv/pd: pkg/response, server/api,
pkg/schedule/schedulers/evict_leader.go).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar, cast
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
ALL_STATES = "state=0&state=1&state=2"  # metapb.StoreState Up, Offline, Tombstone
_EXISTED = "ErrSchedulerExisted"  # errs.ErrSchedulerExisted, in PD's answer

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


class SchedulerExisted(PdError):
    """PD added nothing: a scheduler of that name runs already. PD before 4.0 runs one
    evict-leader scheduler per store, so a second add for a store is refused so."""


class _TooBig(Exception):
    pass


# What one answer may weigh. PD's store list is about 1.6 KB per store, so a cluster of a
# thousand stores is well under this; anything bigger is not PD's answer. A region check read
# in full (restart_store's quorum check) may be far bigger: it has its own bound.
MAX_BODY = 4 << 20
MAX_REGION_LIST = 256 << 20
# How much of a region check an observation reads: the count and the first regions (facts
# show ten). PD writes `{"count":N,"regions":[` first, so a down store's 200k-region list
# costs the head only; PD's own JSON rendering of it is PD's cost.
MAX_HEAD = 1 << 20
_CHECK_HEAD = re.compile(r'\s*\{\s*"count"\s*:\s*(\d+)\s*,\s*"regions"\s*:\s*')
_JSON = json.JSONDecoder()
# Requests that change nothing when repeated: after a timeout or a failure they go to the
# next PD. A POST that may have been applied is never repeated elsewhere.
IDEMPOTENT = frozenset({"GET", "DELETE"})


@dataclass(frozen=True)
class Answer:
    shown: str  # the PD URL, credentials masked
    status: int
    data: Any  # decoded JSON; None for a write or an allowed 404


async def _read(resp: httpx.Response, limit: int) -> bytes:
    """The whole body, refusing one that grows past `limit` bytes before it is all read."""
    announced = resp.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limit:
        raise _TooBig(f"announced {int(announced)} bytes, more than {limit}")
    return await _drain(resp.aiter_bytes(), limit)


async def _drain(stream: AsyncIterator[bytes], limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise _TooBig(f"sent more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class PdClient:
    def __init__(self, urls: Sequence[str], http: httpx.AsyncClient, timeout: float) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.http = http
        self.timeout = timeout
        # PD's clock minus ours, from the Date of PD's last answer: heartbeat ages are PD's.
        self.clock_offset = timedelta(0)

    def now(self) -> datetime:
        """PD's time now, as far as its last answer's Date tells (to a second)."""
        return datetime.now(UTC) + self.clock_offset

    def _clock(self, resp: httpx.Response) -> None:
        try:
            date = parsedate_to_datetime(resp.headers.get("date", ""))
        except (TypeError, ValueError, IndexError):
            return
        if date.tzinfo is not None:
            self.clock_offset = date - datetime.now(UTC)

    # -- transport ---------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        allow_404: bool = False,
        limit: int = MAX_BODY,
        parse: Callable[[httpx.Response], Awaitable[Any]] | None = None,
        accept: Callable[[Any], Any] | None = None,
    ) -> Answer:
        """Tries each PD URL in turn. Each try is bounded as a whole, connecting to the last
        byte (a PD that trickles its answer is as late as one that hangs), and by size.
        Idempotent requests move on after any failure; a POST only when it surely never
        left (refused, or the connection never made). A GET's JSON goes through `accept`
        (its shape: the data it returns, or a PdError): a PD that answers in the wrong shape
        has not answered, and the next one is asked."""
        idempotent = method in IDEMPOTENT
        problems: list[str] = []
        for base in self.urls:
            shown = redact_url(base)
            try:
                async with (
                    asyncio.timeout(self.timeout),
                    self.http.stream(method, base + path, json=body, timeout=self.timeout) as resp,
                ):
                    self._clock(resp)
                    if allow_404 and resp.status_code == 404:
                        return Answer(shown, 404, None)
                    if resp.status_code >= 400 or method != "GET" or parse is None:
                        raw = await _read(resp, limit)
                    else:
                        return Answer(shown, resp.status_code, await parse(resp))
            except TimeoutError:
                problems.append(f"{shown} gave no complete answer within {self.timeout:g} s")
                if idempotent:
                    continue
                break  # the write may have been applied
            except httpx.HTTPError as err:
                problems.append(f"{shown} unreachable ({describe(err)})")
                if idempotent or isinstance(err, httpx.ConnectError | httpx.ConnectTimeout):
                    continue
                break
            except _TooBig as err:
                problems.append(f"{shown} answered with too big a body ({err})")
                if idempotent:
                    continue
                break
            except PdError as err:  # `parse` refused what it read
                problems.append(f"{shown} {err}")
                continue
            if resp.status_code >= 400:
                text = raw.decode("utf-8", "replace")
                problems.append(f"{shown} answered HTTP {resp.status_code}: {snippet(text)}")
                if idempotent and resp.status_code >= 500:
                    continue
                break
            if method != "GET":
                return Answer(shown, resp.status_code, None)  # accepted; PD's text is a courtesy
            try:
                data = json.loads(raw)
            except ValueError:  # also a body that is not UTF-8
                kind = resp.headers.get("content-type", "no content-type")
                text = raw.decode("utf-8", "replace")
                problems.append(
                    f"{shown} answered with something that is not JSON ({kind}): {snippet(text)}"
                )
                continue
            try:
                return Answer(shown, resp.status_code, accept(data) if accept else data)
            except PdError as err:
                problems.append(f"{shown} {err}")
        raise PdError(f"PD {method} {path} failed: {'; '.join(problems)}")

    async def _get(
        self, path: str, model: type[_Model], what: str, limit: int = MAX_BODY
    ) -> _Model:
        answer = await self._call("GET", path, limit=limit, accept=_shape(model, path, what))
        return cast(_Model, answer.data)

    # -- reads -------------------------------------------------------------------------------

    async def stores(self) -> StoresInfo:
        """Every store, Tombstones included: without `state`, PD lists only Up and Offline
        ones (server/api/store.go), and removed stores would never be seen."""
        return await self._get(f"{API}/stores?{ALL_STATES}", StoresInfo, "PD's store list")

    async def region_check(self, check: str, sample: int | None = None) -> RegionsInfo:
        """PD's list of regions failing `check`. With `sample`, only its count and first
        `sample` regions are read (then the answer is dropped); without, all of it."""
        path = f"{API}/regions/check/{check}"
        what = f"PD's {check} region list"
        if sample is None:
            return await self._get(path, RegionsInfo, what, MAX_REGION_LIST)

        async def head(resp: httpx.Response) -> RegionsInfo:
            data = await _region_head(resp, sample)
            return _validate(RegionsInfo, data, f"answered GET {path} with", what)

        answer = await self._call("GET", path, parse=head)
        return cast(RegionsInfo, answer.data)

    async def region(self, region_id: int) -> RegionInfo | None:
        """The region, or None when PD does not know it (404 since PD 4.0; older PDs answered
        null)."""
        path = f"{API}/region/id/{region_id}"
        region = _shape(RegionInfo, path, "a region")

        def accept(data: Any) -> RegionInfo | None:
            if data is None or data == {} or (isinstance(data, dict) and data.get("id") == 0):
                return None
            return cast(RegionInfo, region(data))

        answer = await self._call("GET", path, allow_404=True, accept=accept)
        return None if answer.status == 404 else cast(RegionInfo | None, answer.data)

    async def schedulers(self) -> list[str]:
        path = f"{API}/schedulers"

        def accept(data: Any) -> list[str]:
            try:
                return _SCHEDULERS.validate_python(data) or []
            except ValidationError as err:
                raise PdError(
                    f"answered GET {path} with JSON that is not a list of scheduler names: "
                    f"{_problems(err)}"
                ) from err

        return cast(list[str], (await self._call("GET", path, accept=accept)).data)

    async def evictions(self) -> tuple[list[str], set[int]]:
        """(running scheduler names, ids of the stores whose leaders are being evicted)."""
        names = await self.schedulers()
        stores = {int(m.group(1)) for n in names if (m := _PER_STORE_EVICT.match(n))}
        if EVICT_LEADER in names:
            path = f"{API}/scheduler-config/{EVICT_LEADER}/list"
            what = "the evict-leader scheduler's config"
            answer = await self._call(
                "GET", path, allow_404=True, accept=_shape(EvictLeaderConfig, path, what)
            )
            # 404: the last eviction was removed between the two reads.
            if answer.status != 404:
                stores |= set(cast(EvictLeaderConfig, answer.data).store_id_ranges)
        return names, stores

    # -- writes ------------------------------------------------------------------------------

    async def add_evict_leader(self, store_id: int) -> None:
        """PD 4.0+ adds the store to the running scheduler ("applied"), or creates it; a
        store it evicts already is applied again. PD before 4.0 refuses a store that has one
        (`[PD:scheduler:ErrSchedulerExisted]`): SchedulerExisted, nothing was added."""
        try:
            await self._call(
                "POST", f"{API}/schedulers", body={"name": EVICT_LEADER, "store_id": store_id}
            )
        except PdError as err:
            if _EXISTED in str(err):
                raise SchedulerExisted(str(err)) from err
            raise

    async def remove_evict_leader(self, store_id: int) -> bool:
        """Stop evicting leaders from the store: True if an eviction was removed, False if
        there was none. PD versions differ in how they answer for an absent one (404, or 500
        "scheduler not found"), so a failed delete is checked against the list. A DELETE is
        idempotent: one that timed out at a PD goes to the next, and a 404 there may mean the
        first one did remove it."""
        try:
            answer = await self._call(
                "DELETE", f"{API}/schedulers/{EVICT_LEADER}-{store_id}", allow_404=True
            )
        except PdError:
            _, evicted = await self.evictions()
            if store_id not in evicted:
                return False
            raise
        return answer.status != 404

    async def transfer_leader(self, region_id: int, to_store: int) -> None:
        await self._call(
            "POST",
            f"{API}/operators",
            body={"name": "transfer-leader", "region_id": region_id, "to_store_id": to_store},
        )


class _NotCompact(Exception):
    """The body does not start the way PD writes a region list; judge it whole."""


def check_head(text: str, sample: int, complete: bool) -> dict[str, Any] | None:
    """`{"count": N, "regions": [first `sample` regions]}` from the start of a region check
    as PD writes it (`{"count":N,"regions":[...`, count first), or None when more of the body
    is needed. Raises _NotCompact for anything else."""
    m = _CHECK_HEAD.match(text)
    if m is None:
        if complete or len(text) > 256:
            raise _NotCompact
        return None
    count, pos = int(m.group(1)), m.end()
    if text.startswith("null", pos):
        return {"count": count, "regions": []}
    if not text.startswith("[", pos):
        if pos < len(text) or complete:
            raise _NotCompact
        return None
    pos += 1
    regions: list[Any] = []
    while len(regions) < sample:
        pos = _skip_space(text, pos)
        if text.startswith("]", pos):
            return {"count": count, "regions": regions}
        if regions:
            if not text.startswith(",", pos):
                if pos < len(text) or complete:
                    raise _NotCompact
                return None
            pos = _skip_space(text, pos + 1)
        try:
            item, pos = _JSON.raw_decode(text, pos)
        except ValueError as err:
            if complete:
                raise _NotCompact from err
            return None  # a region not complete yet
        regions.append(item)
    return {"count": count, "regions": regions}


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


async def _region_head(resp: httpx.Response, sample: int) -> Any:
    """The head of a region check (see check_head), read as it arrives and no further than
    needed: at most MAX_HEAD bytes. A body not in PD's compact form is read whole (bounded)
    and judged as any answer."""
    stream = resp.aiter_bytes()
    buf = b""
    complete = False
    while not complete:
        chunk = await anext(stream, None)
        complete = chunk is None
        buf += chunk or b""
        try:
            # Decoded again as it grows: a character cut in two sits at the end, inside a
            # region that is not complete yet.
            head = check_head(buf.decode("utf-8", "replace"), sample, complete)
        except _NotCompact:
            break
        if head is not None:
            return head
        if len(buf) > MAX_HEAD:
            raise PdError(f"sent {MAX_HEAD} bytes without {sample} complete regions")
    if not complete:
        buf += await _drain(stream, MAX_BODY - len(buf))
    try:
        data = json.loads(buf)
    except ValueError as err:
        kind = resp.headers.get("content-type", "no content-type")
        text = buf.decode("utf-8", "replace")
        raise PdError(
            f"answered with something that is not JSON ({kind}): {snippet(text)}"
        ) from err
    if isinstance(data, dict) and isinstance(data.get("regions"), list):
        data = {**data, "regions": data["regions"][:sample]}
    return data


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


def _shape(model: type[_Model], path: str, what: str) -> Callable[[Any], _Model]:
    """`accept` for a GET whose answer must be `model` (see PdClient._call)."""
    return lambda data: _validate(model, data, f"answered GET {path} with", what)
