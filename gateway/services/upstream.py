"""The connection pool to the shop: HTTP/1.1 keep-alive on aiohttp's own protocol pieces.

aiohttp's ClientSession spends most of a proxied request's client cost on machinery a proxy
to one origin switches off anyway (request and response objects, traces, cookies,
redirects, URL handling). The gateway keeps aiohttp's parts that matter, the response
protocol (C parser, flow control, the `sock_read` timer) and the request writer
(chunking, drain), and owns only the pool (docs/performance.md has the figures).
WebSockets and webhooks still use the ClientSession.

Errors are aiohttp's: `aiohttp.ClientError` (refused, reset, a malformed answer) and
`TimeoutError` (connect or read); `forward.py` maps them to 502 and 504.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_writer import StreamWriter
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

# An idle connection older than this is closed, not reused: below the 5 s after which
# Apache (and many shops behind it) close idle connections themselves.
KEEPALIVE_SECONDS = 4.0
RETRIED = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})  # safe: may be sent twice
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # get Content-Length: 0 without a body
READ_BUFFER = 2**16


class BadAnswer(aiohttp.ClientError):
    """The shop answered something that is not an HTTP/1.1 response."""


@dataclass(frozen=True)
class PoolConfig:
    url: str
    connect_timeout: float = 5.0
    read_timeout: float = 30.0  # longest silence of the shop: before the answer, mid-body
    max_line_size: int = 8190
    max_field_size: int = 8190


class UpstreamResponse:
    """Status and headers of the shop's answer; `content` streams the body."""

    def __init__(self, pool: UpstreamPool, proto: ResponseHandler, status: int, reason: str,
                 headers: CIMultiDictProxy[str], raw_headers: tuple[tuple[bytes, bytes], ...],
                 content: StreamReader, sender: asyncio.Task[None] | None) -> None:
        self.status, self.reason, self.headers = status, reason, headers
        self.raw_headers, self.content = raw_headers, content
        length = headers.get("Content-Length")
        self.content_length = int(length) if length is not None and length.isdigit() else None
        self._pool, self._sender = pool, sender
        self._proto: ResponseHandler | None = proto

    def release(self) -> None:
        """Back to the pool when the exchange finished cleanly; otherwise closed."""
        proto, self._proto = self._proto, None
        if proto is None:
            return
        sender = self._sender
        sender_done = sender is None or sender.done()
        if sender is not None and not sender_done:
            sender.cancel()
        clean = sender_done and self.content.is_eof() and not proto.should_close
        self._pool.give_back(proto, clean)


class UpstreamPool:
    """Keep-alive connections to one origin, most recently used first."""

    def __init__(self, config: PoolConfig) -> None:
        url = URL(config.url)
        self.config = config
        self.host, self.port = url.raw_host or "127.0.0.1", url.port or 80
        self.ssl = ssl.create_default_context() if url.scheme == "https" else None
        self.host_header = url.raw_authority  # omits the scheme's default port, as aiohttp does
        self.base_path = url.raw_path.rstrip("/")  # a shop below its host's root
        self.origin = config.url.rstrip("/")  # as the shop names itself in Location
        self._idle: list[tuple[ResponseHandler, float]] = []
        self._busy: set[ResponseHandler] = set()
        self._closed = False

    async def request(self, method: str, target: str, headers: list[tuple[str, str]],
                      body: AsyncIterable[bytes] | None = None,
                      content_length: int | None = None) -> UpstreamResponse:
        """Send the request (the body streamed by a task, as the answer may come first)."""
        head = CIMultiDict(headers)
        head["Host"] = self.host_header
        if body is not None:
            if content_length is not None:
                head["Content-Length"] = str(content_length)
            else:
                head["Transfer-Encoding"] = "chunked"
        elif method in BODY_METHODS:
            head["Content-Length"] = "0"
        # A kept-alive connection may have been closed by the shop a moment ago: a safe
        # request (no body, nothing changes) is sent again once on a new connection.
        proto, reused = await self._acquire()
        try:
            return await self._exchange(proto, method, target, head, body, content_length)
        except aiohttp.ClientConnectionError as exc:
            self.give_back(proto, False)
            if not reused or method not in RETRIED or body is not None \
                    or isinstance(exc, TimeoutError):
                raise
        except BaseException:
            self.give_back(proto, False)
            raise
        proto = await self._connect()
        try:
            return await self._exchange(proto, method, target, head, body, content_length)
        except BaseException:
            self.give_back(proto, False)
            raise

    async def _exchange(self, proto: ResponseHandler, method: str, target: str,
                        head: CIMultiDict[str], body: AsyncIterable[bytes] | None,
                        content_length: int | None) -> UpstreamResponse:
        cfg = self.config
        proto.set_response_params(skip_payload=method == "HEAD", auto_decompress=False,
                                  read_until_eof=True,  # no length, not chunked: until close
                                  read_timeout=cfg.read_timeout, read_bufsize=READ_BUFFER,
                                  max_line_size=cfg.max_line_size,
                                  max_field_size=cfg.max_field_size)
        loop = asyncio.get_running_loop()
        writer = StreamWriter(proto, loop)
        sender: asyncio.Task[None] | None = None
        try:
            await writer.write_headers(f"{method} {target} HTTP/1.1", head)
            if body is None:
                writer.set_eof()
                proto.start_timeout()
            else:
                if content_length is None:
                    writer.enable_chunking()
                sender = loop.create_task(_send_body(proto, writer, body))
            message, payload = await proto.read()
        except HttpProcessingError as exc:
            _cancel(sender)
            raise BadAnswer(f"the shop's answer is not HTTP/1.1: {exc.message}") from exc
        except BaseException:
            _cancel(sender)
            raise
        return UpstreamResponse(self, proto, message.code, message.reason, message.headers,
                                message.raw_headers, payload, sender)

    async def _acquire(self) -> tuple[ResponseHandler, bool]:
        now = time.monotonic()
        while self._idle:
            proto, since = self._idle.pop()
            if proto.is_connected() and now - since < KEEPALIVE_SECONDS:
                self._busy.add(proto)
                return proto, True
            proto.close()
        return await self._connect(), False

    async def _connect(self) -> ResponseHandler:
        if self._closed:
            raise aiohttp.ClientConnectionError("the upstream pool is closed")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                _transport, proto = await loop.create_connection(
                    lambda: ResponseHandler(loop), self.host, self.port, ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None)
        except OSError as exc:
            raise aiohttp.ClientOSError(exc.errno, f"cannot connect to the shop: {exc}") from exc
        self._busy.add(proto)
        return proto

    def give_back(self, proto: ResponseHandler, clean: bool) -> None:
        self._busy.discard(proto)
        if clean and not self._closed and proto.is_connected():
            self._idle.append((proto, time.monotonic()))
        else:
            proto.close()

    async def close(self) -> None:
        self._closed = True
        for proto, _since in self._idle:
            proto.close()
        for proto in self._busy:
            proto.close()
        self._idle.clear()
        self._busy.clear()


async def _send_body(proto: ResponseHandler, writer: StreamWriter,
                     body: AsyncIterable[bytes]) -> None:
    """Stream the client's body; the read timer starts once it is all sent."""
    try:
        async for chunk in body:
            await writer.write(chunk)
        await writer.write_eof()
    except Exception as exc:
        # A body that stops (too large, the client gone) fails the exchange: the waiting
        # read raises it, and the connection is not reused.
        proto.set_exception(exc)
        return
    proto.start_timeout()


def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
