"""The pipelined script channel: reply parsing, order, timeouts, lost connections, and the
Redis URL's database — against a real redis-server, or a socket that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ratelimiter.channel import ScriptChannel, _Incomplete, encode, parse
from ratelimiter.scripts import Script
from tests.fixtures.ratelimiter import RedisProcess

ECHO = Script("return {tonumber(ARGV[1]), ARGV[2], KEYS[1]}")
FAIL = Script("return redis.error_reply('nope')")


def test_parse_every_reply_kind_and_wait_for_the_rest_of_a_split_one() -> None:
    wire = b"*4\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*1\r\n+OK\r\n-ERR bad\r\n"
    value, end = parse(bytearray(wire), 0)
    assert value == [42, "hello", None, ["OK"]]
    error, _ = parse(bytearray(wire), end)
    assert isinstance(error, ResponseError) and str(error) == "ERR bad"
    for cut in range(1, end):
        with pytest.raises(_Incomplete):
            parse(bytearray(wire[:cut]), 0)
    assert encode(b"GET", "k€", 7) == b"*3\r\n$3\r\nGET\r\n$4\r\nk\xe2\x82\xac\r\n$1\r\n7\r\n"


async def test_replies_reach_their_callers_in_order(rl_redis: RedisProcess) -> None:
    channel = ScriptChannel(rl_redis.url, timeout=2.0)
    try:
        replies = await asyncio.gather(
            *(channel.call(ECHO, [f"key{i}"], [i, "x" * (i % 50)]) for i in range(500))
        )
        assert replies == [[i, "x" * (i % 50), f"key{i}"] for i in range(500)]
        with pytest.raises(ResponseError, match="nope"):
            await channel.call(FAIL, [], [])
        assert await channel.call(ECHO, ["k"], [1, "still fine"]) == [1, "still fine", "k"]
    finally:
        await channel.aclose()


async def test_the_database_in_the_url_is_the_one_used(rl_redis: RedisProcess) -> None:
    url = rl_redis.url.rsplit("/", 1)[0] + "/3"
    channel = ScriptChannel(url, timeout=2.0)
    writer = Script("redis.call('SET', KEYS[1], 'here'); return 1")
    try:
        await channel.call(writer, ["channel-db-probe"], [])
    finally:
        await channel.aclose()
    db3 = Redis.from_url(url, decode_responses=True)
    db0 = Redis.from_url(rl_redis.url, decode_responses=True)
    try:
        assert await db3.get("channel-db-probe") == "here"
        assert await db0.get("channel-db-probe") is None
    finally:
        await db3.aclose()
        await db0.aclose()


async def _server(handler: Any) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"redis://127.0.0.1:{port}/0"


async def test_a_silent_redis_times_out_every_waiting_caller_in_about_the_timeout() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)  # reads everything, answers nothing

    server, url = await _server(swallow)
    channel = ScriptChannel(url, timeout=0.2)
    try:
        started = time.monotonic()
        results = await asyncio.gather(
            *(channel.call(ECHO, ["k"], [1, "a"]) for _ in range(10)), return_exceptions=True
        )
        took = time.monotonic() - started
        assert all(isinstance(r, RedisTimeoutError) for r in results), results
        # About the timeout, not ten of them one after another (2.0 s) nor a hang; the slack
        # is a loaded 2-core machine.
        assert 0.2 <= took < 1.5, took
    finally:
        await channel.aclose()
        server.close()


async def test_a_dropped_connection_fails_its_callers_and_the_next_call_reconnects(
    rl_redis: RedisProcess,
) -> None:
    connections = 0

    async def hang_up_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await reader.read(10)
            writer.close()
            return
        # Later connections are relayed to the real Redis.
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", rl_redis.port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    server, url = await _server(hang_up_first)
    channel = ScriptChannel(url, timeout=2.0)
    try:
        with pytest.raises(RedisConnectionError, match="lost"):
            await channel.call(ECHO, ["k"], [1, "a"])
        assert await channel.call(ECHO, ["k"], [2, "b"]) == [2, "b", "k"]
        assert connections == 2
    finally:
        await channel.aclose()
        server.close()


async def test_nothing_listening_is_a_connection_error_naming_the_address() -> None:
    server, url = await _server(lambda r, w: None)
    server.close()
    await server.wait_closed()
    channel = ScriptChannel(url, timeout=0.5)
    with pytest.raises(RedisConnectionError, match=r"Error connecting to 127\.0\.0\.1:\d+"):
        await channel.call(ECHO, ["k"], [1, "a"])
