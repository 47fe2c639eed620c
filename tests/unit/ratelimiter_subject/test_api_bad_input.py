"""Garbage from the rate limiter's admin API, on a real socket: each answer fails with an
`ApiError` that names the URL and what was wrong (HTML, JSON of the wrong shape, bytes that
are not UTF-8, JSON cut short, a body far too big, read no further than the bound), and a
node that answers well after one that answered garbage is still used."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest

from ratelimiter_subject.api import MAX_BODY, ApiError, RateLimiterApi

GOOD_NODES = b'[{"node_id": "n1", "address": "http://127.0.0.1:1", "state": "up"}]'


class Garbage(BaseHTTPRequestHandler):
    """Answers every request with `answer` (status, content type, body); `sent` counts the
    bytes it managed to write (a client that stops reading stops it)."""

    answer: ClassVar[tuple[int, str, bytes]] = (200, "application/json", b"[]")
    sent: ClassVar[int] = 0

    def do_GET(self) -> None:
        status, kind, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for i in range(0, len(body), 65536):
                self.wfile.write(body[i : i + 65536])
                type(self).sent += len(body[i : i + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


class Good(Garbage):
    answer = (200, "application/json", GOOD_NODES)


def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def garbage() -> Iterator[str]:
    Garbage.sent = 0
    yield from serve(Garbage)


@pytest.fixture
def good() -> Iterator[str]:
    yield from serve(Good)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        ((200, "text/html", b"<html>login</html>"), "not JSON (text/html): '<html>login</html>'"),
        ((200, "application/json", b'{"nodes": []}'), "unexpected shape: (body): Input should"),
        ((200, "application/json", b'[{"node_id": 7}]'), "unexpected shape: 0.node_id"),
        ((200, "application/json", b'[{"node_id": "n1", "sta'), "not JSON (application/json)"),
        ((200, "application/json", b"[\xff\xfe\x00garbage]"), "not JSON (application/json)"),
        ((502, "text/html", b"<h1>Bad Gateway</h1>"), "HTTP 502 '<h1>Bad Gateway</h1>'"),
    ],
)
async def test_garbage_is_a_clear_error(
    garbage: str, http: httpx.AsyncClient, answer: tuple[int, str, bytes], complaint: str
) -> None:
    Garbage.answer = answer
    with pytest.raises(ApiError) as err:
        await RateLimiterApi([garbage], http, timeout=5).nodes()
    assert complaint in str(err.value), str(err.value)
    assert garbage in str(err.value) or "GET /admin/nodes" in str(err.value)


async def test_a_huge_body_is_refused_without_reading_it_all(
    garbage: str, http: httpx.AsyncClient
) -> None:
    Garbage.answer = (200, "application/json", b"[" + b'"x",' * (8 * MAX_BODY // 4) + b'"x"]')
    with pytest.raises(ApiError, match=f"too big a body \\(more than {MAX_BODY} bytes\\)"):
        await RateLimiterApi([garbage], http, timeout=5).nodes()
    assert Garbage.sent < 4 * MAX_BODY  # the rest was never read


async def test_a_good_node_after_a_garbage_one_is_used(
    garbage: str, good: str, http: httpx.AsyncClient
) -> None:
    Garbage.answer = (200, "text/html", b"<html>maintenance</html>")
    [node] = await RateLimiterApi([garbage, good], http, timeout=5).nodes()
    assert node.node_id == "n1"
