"""Delivers notices to a webhook without ever holding up a loop, once each.

`offer` is the transitions hub's subscriber: it only puts the transition's notices on a
bounded queue (a full queue drops the notice with an error line; the catch-up at the next
start sends it). One background task takes them in order and posts each, retrying with
exponential backoff while the receiver fails (refused, timed out, 408, 429, 5xx); a receiver
that refuses the payload itself (any other 4xx) gets it once, logged. A notice older than
`max_age` is given up, logged.

Exactly once per transition, across restarts: a notice is posted only when its object does not
record it yet, and once delivered it is recorded on the object, in the annotation
`notify.aiops.dev/sent` (the notice kinds, comma-separated), beside an in-memory set. After a
restart, `catch_up` offers again what the objects show happened within `CATCH_UP` and do not
record as sent: a notice lost in the queue by a crash goes out then, a delivered one never
again. (A crash between the receiver's 200 and the annotation's write sends that one twice: the
only window left, a few milliseconds wide.)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from aiops.api import Chaos, Incident
from aiops.kube import CustomResources, is_not_found
from aiops.logs import fields
from aiops.loops.transitions import Transition, chaos_transition, incident_transition
from aiops.notify.messages import NoticeKind, notices, payload
from aiops.redact import Redactor
from aiops.subjects.contract import utcnow
from aiops.vocabulary import ChaosPhase, Phase

log = logging.getLogger("aiops.notify")

SENT = "notify.aiops.dev/sent"
CATCH_UP = timedelta(hours=1)
QUEUE_MAX = 1000
_RETRY_STATUS = frozenset({408, 425, 429})
_PLURAL = {"Incident": Incident.PLURAL, "Chaos": Chaos.PLURAL}

UrlSource = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class Delivery:
    kind: NoticeKind
    transition: Transition
    queued: float  # time.monotonic()

    @property
    def key(self) -> tuple[str, str, str, NoticeKind]:
        t = self.transition
        return (t.kind, t.namespace, t.uid or t.name, self.kind)


class Retry(Exception):
    """This attempt failed in a way a later one may not; the message says how."""


class WebhookSink:
    def __init__(
        self,
        url: UrlSource,
        fmt: str,
        api: CustomResources,
        redactor: Redactor,
        *,
        timeout: float = 10.0,
        backoff_first: float = 1.0,
        backoff_max: float = 30.0,
        max_age: float = 3600.0,
        queue_max: int = QUEUE_MAX,
    ) -> None:
        self._url_source = url
        self._url: str | None = None
        self.fmt = fmt
        self.api = api
        self.redactor = redactor
        self.timeout = timeout
        self.backoff_first, self.backoff_max, self.max_age = backoff_first, backoff_max, max_age
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=queue_max)
        self._seen: set[tuple[str, str, str, NoticeKind]] = set()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    # -- the loops' side: never waits ------------------------------------------------------

    def offer(self, t: Transition) -> None:
        """The hub's subscriber: queues `t`'s notices (if any), at once."""
        for kind in notices(t):
            self._queue(Delivery(kind, t, time.monotonic()))

    def _queue(self, d: Delivery) -> None:
        if d.key in self._seen:
            return
        try:
            self.queue.put_nowait(d)
        except asyncio.QueueFull:
            _say(
                logging.ERROR,
                d,
                f"dropped: {self.queue.qsize()} are queued already (the receiver is slow or "
                "down); it is sent at the next start if still due",
            )
            return
        self._seen.add(d.key)

    def catch_up(self, kind_of: str, obj: dict[str, Any]) -> None:
        """Offers what `obj` (an Incident or a Chaos, `kind_of`, as listed at start) shows
        happened within CATCH_UP and does not record as sent."""
        sent = _sent(obj)
        since = utcnow() - CATCH_UP
        for kind, t in _due(kind_of, obj):
            if str(kind) not in sent and t.time >= since:
                self._queue(Delivery(kind, t, time.monotonic()))

    # -- the background task ---------------------------------------------------------------

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="aiops-notifications")

    async def stop(self, drain: float = 5.0) -> None:
        """Stops the task, after up to `drain` seconds for what is queued."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self.queue.join(), timeout=drain)
        except TimeoutError:
            log.warning("stopping with %d notifications unsent", self.queue.qsize())
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        while True:
            d = await self.queue.get()
            try:
                await self._deliver(d)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop every later notification
                _say(logging.ERROR, d, "failed", exc_info=True)
            finally:
                self.queue.task_done()

    async def _deliver(self, d: Delivery) -> None:
        attempt = 0
        while True:
            try:
                if await self._recorded(d):
                    return
                delivered = await self._post(d)
            except Retry as err:
                attempt += 1
                if time.monotonic() - d.queued > self.max_age:
                    _say(logging.ERROR, d, f"given up after {attempt} attempts: {err}")
                    return
                delay = min(self.backoff_first * 2 ** (attempt - 1), self.backoff_max)
                _say(
                    logging.WARNING,
                    d,
                    f"failed (attempt {attempt}): {err}; retrying in {delay:.0f} s",
                )
                await asyncio.sleep(delay)
                continue
            await self._record(d)  # a refused one too: sent again, it would be refused again
            if not delivered:
                return
            _say(logging.INFO, d, "delivered")
            return

    async def _post(self, d: Delivery) -> bool:
        """Posts `d`: True when the receiver took it, False when it refused it for good
        (logged); raises Retry when a later attempt may succeed."""
        assert self._client is not None
        url = await self._webhook()
        body = payload(self.fmt, d.kind, d.transition, self.redactor)
        try:
            response = await self._client.post(url, json=body)
        except httpx.HTTPError as err:
            self._url = None  # read the Secret again: it may have been rotated
            raise Retry(_describe(err, self.timeout)) from None
        code = response.status_code
        if 200 <= code < 300:
            return True
        if code >= 500 or code in _RETRY_STATUS:
            self._url = None
            raise Retry(f"the receiver answered {code}")
        _say(logging.ERROR, d, f"refused by the receiver ({code}): not sent again")
        return False

    async def _webhook(self) -> str:
        if self._url is None:
            try:
                self._url = await self._url_source()
            except Exception as err:  # a Secret not there yet is a retry, said in the log
                raise Retry(str(err)) from None
            self.redactor.register(self._url)  # the URL is a credential: never in a log
        return self._url

    # -- what is recorded on the object ----------------------------------------------------

    async def _recorded(self, d: Delivery) -> bool:
        t = d.transition
        try:
            obj = await self.api.get(_PLURAL[t.kind], t.namespace, t.name)
        except Exception as err:
            if is_not_found(err):
                return False  # deleted meanwhile: nothing records it, so tell it
            raise Retry(f"could not read {t.kind} {t.namespace}/{t.name}: {err}") from None
        if t.uid and obj["metadata"].get("uid") != t.uid:
            return False  # another object of the same name now
        return str(d.kind) in _sent(obj)

    async def _record(self, d: Delivery) -> None:
        t = d.transition
        try:
            obj = await self.api.get(_PLURAL[t.kind], t.namespace, t.name)
            sent = sorted(_sent(obj) | {str(d.kind)})
            patch = {"metadata": {"annotations": {SENT: ",".join(sent)}}}
            await self.api.patch(_PLURAL[t.kind], t.namespace, t.name, patch)
        except Exception as err:
            if not is_not_found(err):  # this process still remembers it (`_seen`)
                _say(logging.WARNING, d, f"delivered, but not recorded on the object: {err}")


def _sent(obj: dict[str, Any]) -> set[str]:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(SENT) or ""
    return {k for k in value.split(",") if k}


def _due(kind_of: str, obj: dict[str, Any]) -> list[tuple[NoticeKind, Transition]]:
    """The notices `obj`'s status shows are due, each with its transition as of then."""
    status = obj.get("status") or {}
    out: list[tuple[NoticeKind, Transition]] = []
    if kind_of == "Chaos":
        phase, targets = status.get("phase"), status.get("targets") or []
        instant = bool(targets) and all(t.get("instant") for t in targets)
        if phase in (ChaosPhase.INJECTED, ChaosPhase.RECOVERED) and status.get("injectedAt"):
            t = chaos_transition(obj, {**status, "phase": ChaosPhase.INJECTED}, ChaosPhase.PENDING)
            out.append((NoticeKind.CHAOS_INJECTED, _at(t, status["injectedAt"])))
        if phase == ChaosPhase.RECOVERED and status.get("recoveredAt"):
            before = ChaosPhase.PENDING if instant else ChaosPhase.INJECTED
            t = chaos_transition(obj, status, before)
            out.append((NoticeKind.CHAOS_RECOVERED, _at(t, status["recoveredAt"])))
        return out
    previous: str = Phase.OPEN
    for entry in status.get("timeline") or []:
        phase = entry.get("phase")
        if not phase or phase == previous:
            continue
        t = incident_transition(obj, status, previous, phase, str(entry.get("message") or ""))
        out += [(k, _at(t, entry.get("time"))) for k in notices(t)]
        previous = phase
    return out


def _at(t: Transition, when: Any) -> Transition:
    try:
        time_ = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
    except ValueError:
        return t
    return t.model_copy(update={"time": time_})


def _say(level: int, d: Delivery, text: str, exc_info: bool = False) -> None:
    """A line about notice `d`: "notification KIND of KIND NS/NAME: text", with the names."""
    t = d.transition
    log.log(
        level,
        "notification %s of %s %s/%s: %s",
        d.kind,
        t.kind,
        t.namespace,
        t.name,
        text,
        exc_info=exc_info,
        extra=fields(
            event="notification",
            notice=str(d.kind),
            namespace=t.namespace,
            subject=t.subject,
            **{t.kind.lower(): t.name},
        ),
    )


def _describe(err: httpx.HTTPError, timeout: float) -> str:
    if isinstance(err, httpx.TimeoutException):
        return f"no answer within {timeout:.0f} s"
    if isinstance(err, httpx.ConnectError):
        return "the receiver cannot be reached (connection refused or no route)"
    return type(err).__name__


def secret_url(api: CustomResources, namespace: str, name: str, key: str) -> UrlSource:
    """Reads the webhook URL from the Secret `name`'s `key` in `namespace` when called."""

    async def read() -> str:
        from kubernetes import client as k8s

        core = k8s.CoreV1Api(api.api_client)
        try:
            secret = await asyncio.to_thread(core.read_namespaced_secret, name, namespace)
        except Exception as err:
            if is_not_found(err):
                raise LookupError(f"Secret {namespace}/{name} does not exist") from None
            raise LookupError(f"Secret {namespace}/{name} cannot be read: {err}") from None
        raw = (secret.data or {}).get(key)
        if raw is None:
            raise LookupError(f"Secret {namespace}/{name} has no key {key}")
        url = base64.b64decode(raw).decode().strip()
        if not url.startswith(("http://", "https://")):
            raise LookupError(f"Secret {namespace}/{name} key {key} is not an http(s) URL")
        return url

    return read
