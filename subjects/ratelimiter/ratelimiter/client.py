"""A lean HTTP/1.1 keep-alive client for POST /check, for the load generator and benchmark.

Why not httpx: at a thousand checks a second on two shared cores, a general client spends
more CPU per request than the service does, and its event-loop delay would show up as our
latency. This one does one thing: write a request, read a response with Content-Length
(which is what uvicorn sends for every response of this service).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

# Below uvicorn's default keep-alive timeout (5 s).
IDLE_REOPEN_S = 3.0


class ClientError(Exception):
    """The connection failed or the response could not be read."""


class _Closed(EOFError):
    """The server had closed the connection: no byte of a reply came back."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected http://host:port, got {url!r}")
        return cls(parts.hostname, parts.port or 80)


class Connection:
    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._last_used = 0.0

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.endpoint.host, self.endpoint.port
            )
        return self._reader, self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(self, method: str, path: str, body: bytes = b"") -> Reply:
        loop = asyncio.get_running_loop()
        # A server closes idle keep-alive connections (uvicorn: after 5 s); reopen before
        # that rather than find out with a failed request.
        if self._writer is not None and loop.time() - self._last_used > IDLE_REOPEN_S:
            self.close()
        reused = self._writer is not None
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    return await self._request(method, path, body)
                except _Closed:
                    if not reused:
                        raise
                    # Closed under us before any reply: the request was never served.
                    # Once more on a fresh connection, as HTTP clients do for idle ones.
                    self.close()
                    return await self._request(method, path, body)
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            self.close()
            raise ClientError(f"{type(exc).__name__}: {exc}") from None
        finally:
            self._last_used = loop.time()

    async def _request(self, method: str, path: str, body: bytes) -> Reply:
        reader, writer = await self._open()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.endpoint.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        status_line = await reader.readline()
        if not status_line:
            raise _Closed("connection closed by the server")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        close = False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        payload = await reader.readexactly(length) if length else b""
        if close:
            self.close()
        return Reply(status, payload)


def check_body(key: str) -> bytes:
    return json.dumps({"key": key}).encode()
