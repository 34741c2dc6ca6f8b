"""The shop connection pool (gateway/services/upstream.py) against real sockets on loopback.

Each case is a small raw asyncio server that answers exactly as a difficult shop would:
keep-alive, closing idle connections, chunked bodies, answers before the upload ends,
garbage, silence.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from gateway.services.upstream import BadAnswer, PoolConfig, UpstreamPool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@contextlib.asynccontextmanager
async def shop(handler: Handler) -> AsyncIterator[tuple[str, list[str]]]:
    """A server on a free port; yields its URL and a log of connections seen."""
    seen: list[str] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append("connect")
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await handler(reader, writer)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """Head and body (Content-Length or chunked) of one request."""
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    if b"content-length:" in lower:
        size = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        return head, await reader.readexactly(size)
    body = b""
    if b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    return head, body


async def serve_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()


async def read_all(pool: UpstreamPool, method: str = "GET", **kwargs: object) -> tuple[int, bytes]:
    response = await pool.request(method, "/x", [("Accept", "*/*")], **kwargs)  # type: ignore[arg-type]
    try:
        return response.status, await response.content.read()
    finally:
        response.release()


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_keep_alive_reuses_one_connection() -> None:
    async with shop(serve_ok) as (url, seen):
        pool = UpstreamPool(PoolConfig(url))
        for _ in range(5):
            assert await read_all(pool) == (200, b"ok")
        await pool.close()
    assert seen == ["connect"]


@pytest.mark.parametrize(("length", "framing"), [(11, b"content-length: 11"),
                                                 (None, b"transfer-encoding: chunked")],
                         ids=["content-length", "chunked"])
async def test_bodies_are_framed_as_the_client_sent_them(length: int | None,
                                                        framing: bytes) -> None:
    got: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await read_request(reader))
        writer.write(OK)
        await writer.drain()

    async with shop(handler) as (url, _seen):
        pool = UpstreamPool(PoolConfig(url))
        assert await read_all(pool, "POST", body=chunks(b"hello", b" world"),
                              content_length=length) == (200, b"ok")
        await pool.close()
    (head, body), = got
    assert framing in head.lower() and body == b"hello world"
    assert b"\r\nhost: 127.0.0.1:" in head.lower()


async def test_empty_post_says_content_length_zero() -> None:
    got: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append((await read_request(reader))[0])
        writer.write(OK)
        await writer.drain()

    async with shop(handler) as (url, _seen):
        pool = UpstreamPool(PoolConfig(url))
        assert (await read_all(pool, "POST"))[0] == 200
        await pool.close()
    assert b"content-length: 0" in got[0].lower()


async def test_a_connection_the_shop_closed_is_retried_for_a_bodiless_request() -> None:
    """The shop closes each connection right after answering (a short keep-alive): the
    next GET finds a dead pooled connection and goes out again on a new one."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()

    async with shop(handler) as (url, seen):
        pool = UpstreamPool(PoolConfig(url))
        for _ in range(3):
            assert await read_all(pool) == (200, b"ok")
        await pool.close()
    assert len(seen) == 3


async def test_a_body_cut_short_is_a_payload_error_and_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()

    async with shop(handler) as (url, _seen):
        pool = UpstreamPool(PoolConfig(url))
        response = await pool.request("GET", "/", [])
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.content.read()
        response.release()
        assert pool._idle == []
        await pool.close()


@pytest.mark.parametrize("answer", [b"SMTP ready\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n"],
                         ids=["not-http", "bad-status"])
async def test_an_answer_that_is_not_http_is_a_bad_answer(answer: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        await asyncio.sleep(0.2)

    async with shop(handler) as (url, _seen):
        pool = UpstreamPool(PoolConfig(url))
        with pytest.raises(BadAnswer):
            await pool.request("GET", "/", [])
        await pool.close()


async def test_head_does_not_wait_for_the_announced_body() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
            await writer.drain()

    async with shop(handler) as (url, seen):
        pool = UpstreamPool(PoolConfig(url, read_timeout=2))
        for _ in range(2):
            assert await asyncio.wait_for(read_all(pool, "HEAD"), 1) == (200, b"")
        await pool.close()
    assert seen == ["connect"]


async def test_silence_is_a_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with shop(handler) as (url, _seen):
        pool = UpstreamPool(PoolConfig(url, read_timeout=0.2))
        with pytest.raises(TimeoutError):
            await pool.request("GET", "/", [])
        await pool.close()


async def test_nobody_listening_is_a_connection_error() -> None:
    async with shop(serve_ok) as (url, _seen):
        pass  # closed: the port is free again
    pool = UpstreamPool(PoolConfig(url))
    with pytest.raises(aiohttp.ClientOSError):
        await pool.request("GET", "/", [])
    await pool.close()


async def test_an_answer_before_the_upload_ends_is_returned_and_the_upload_stopped() -> None:
    """A shop may refuse an upload (413) without reading it: the answer is passed on, the
    rest of the body is not sent, and the connection is not used again."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()

    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 1
            yield b"x" * 65536
            await asyncio.sleep(0.01)

    async with shop(handler) as (url, _seen):
        pool = UpstreamPool(PoolConfig(url))
        assert await asyncio.wait_for(read_all(pool, "POST", body=endless()), 2) == (413, b"")
        await asyncio.sleep(0.1)
        stopped_at = sent
        await asyncio.sleep(0.1)
        assert sent == stopped_at and pool._idle == []
        await pool.close()


async def test_a_closed_pool_refuses_new_requests() -> None:
    async with shop(serve_ok) as (url, _seen):
        pool = UpstreamPool(PoolConfig(url))
        assert await read_all(pool) == (200, b"ok")
        await pool.close()
        with pytest.raises(aiohttp.ClientConnectionError):
            await pool.request("GET", "/", [])


async def test_a_body_without_length_runs_until_the_shop_closes() -> None:
    """HTTP/1.1 without Content-Length or chunks: the body is everything until close."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello, ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"world")
        await writer.drain()

    async with shop(handler) as (url, _seen):
        pool = UpstreamPool(PoolConfig(url))
        assert await read_all(pool) == (200, b"hello, world")
        assert pool._idle == []
        await pool.close()


async def test_only_safe_methods_are_sent_twice() -> None:
    """A pooled connection that dies under a POST is a 502 for the caller, never a second
    POST; a GET in the same spot goes out again on a new connection."""
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _body = await read_request(reader)
        requests.append(head.split(b" ", 1)[0])
        writer.write(OK)
        await writer.drain()
        head, _body = await read_request(reader)  # the second request on this connection:
        requests.append(head.split(b" ", 1)[0])  # taken, then the shop drops it unanswered

    async with shop(handler) as (url, _seen):
        pool = UpstreamPool(PoolConfig(url))
        assert await read_all(pool) == (200, b"ok")
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await read_all(pool, "POST")
        assert await read_all(pool) == (200, b"ok")
        assert await read_all(pool) == (200, b"ok")  # reused, then dropped: sent again
        await pool.close()
    assert requests == [b"GET", b"POST", b"GET", b"GET", b"GET"]
