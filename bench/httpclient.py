"""A small HTTP/1.1 load client on raw asyncio: cheap enough per request to drive a proxy.

aiohttp's client costs ~150 us per request of the same CPU the server under test needs;
this one sends pre-built request bytes and only counts response bytes.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from bench.framing import Framing

HOST = "127.0.0.1"


def build_request(method: str, path: str, port: int, headers: dict[str, str] | None = None,
                  body_size: int = 0, with_body: bool = True) -> bytes:
    """Request bytes; with a body of zeros unless `with_body` is False (streamed later)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body_size or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {body_size}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (bytes(body_size) if with_body else b"")


class ClientConn(Framing, asyncio.Protocol):
    """One keep-alive connection; `exchange` sends bytes and returns the response status."""

    def __init__(self) -> None:
        Framing.__init__(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[int] | None = None
        self.status = 0
        self.body_bytes = 0
        self.closed = False
        self.close_after = False
        self.writable = asyncio.Event()
        self.writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.writable.set()
        if self.waiter is not None and not self.waiter.done():
            if self.mode == "eof":
                self.waiter.set_result(self.status)
            else:
                self.waiter.set_exception(ConnectionError("connection closed mid-response"))

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    async def send(self, data: bytes) -> None:
        """Write with flow control (for big uploads)."""
        assert self.transport is not None
        await self.writable.wait()
        if self.closed:
            raise ConnectionError("connection closed while sending")
        self.transport.write(data)

    def expect(self) -> asyncio.Future[int]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.mode, self.body_bytes = "head", 0
        return self.waiter

    async def exchange(self, raw: bytes) -> int:
        assert self.transport is not None
        if self.closed or self.transport.is_closing():  # the server closed it while idle
            raise ConnectionError("connection closed before the request")
        waiter = self.expect()
        self.transport.write(raw)
        return await waiter

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.step():
            pass

    def body_taken(self, count: int) -> None:
        self.body_bytes += count

    def parse_head(self, raw: bytes) -> None:
        lines = raw.split(b"\r\n")
        self.status = int(lines[0].split(b" ")[1])
        length, chunked = None, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                self.close_after = b"close" in value.lower()
        if self.status in (100, 103):
            return  # interim response: the real one follows
        if chunked:
            self.mode = "chunk-size"
        elif length is not None:
            self.mode, self.left = "length", length
            if length == 0:
                self.message_done()
        else:
            self.mode = "eof"

    def message_done(self) -> None:
        self.mode = "head"
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.status)


async def connect(port: int) -> ClientConn:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(ClientConn, HOST, port)
    return conn


@dataclass
class LoadResult:
    """Latencies in seconds, completed count, status histogram, errors, elapsed seconds."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    elapsed: float = 0.0

    def record(self, status: int, latency: float) -> None:
        self.latencies.append(latency)
        self.statuses[status] = self.statuses.get(status, 0) + 1

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000


async def _worker(port: int, raws: Iterator[bytes], until: float, result: LoadResult) -> None:
    conn: ClientConn | None = None
    while time.perf_counter() < until:
        raw = next(raws)
        try:
            if conn is None or conn.closed or conn.close_after:
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                conn = await connect(port)
            start = time.perf_counter()
            status = await asyncio.wait_for(conn.exchange(raw), 30)
            result.record(status, time.perf_counter() - start)
        except (OSError, ConnectionError, TimeoutError):
            result.errors += 1
            conn = None
            await asyncio.sleep(0.01)
    if conn is not None and conn.transport is not None:
        conn.transport.close()


async def closed_loop(port: int, raw: bytes | Sequence[bytes], connections: int,
                      duration: float) -> LoadResult:
    """N connections, each sending its next request as soon as the last one is answered.
    Several requests in `raw` are sent in turn across all connections (many sessions)."""
    result = LoadResult()
    raws = itertools.cycle([raw] if isinstance(raw, bytes) else list(raw))
    start = time.perf_counter()
    until = start + duration
    await asyncio.gather(*(_worker(port, raws, until, result) for _ in range(connections)))
    result.elapsed = time.perf_counter() - start
    return result


async def fixed_rate(port: int, raw: bytes | Sequence[bytes], rate: float, duration: float,
                     max_connections: int = 512) -> LoadResult:
    """Open loop at `rate` requests/s; latency counts from the intended send time, so a
    stalled server is not hidden by a client that waits for it (coordinated omission).
    Several requests in `raw` are sent in turn (many sessions, say)."""
    raws = [raw] if isinstance(raw, bytes) else list(raw)
    result = LoadResult()
    idle: list[ClientConn] = []
    open_count = 0
    tasks: set[asyncio.Task[None]] = set()

    async def one(intended: float, raw: bytes) -> None:
        nonlocal open_count
        conn = None
        while idle and conn is None:  # one the server closed while it sat idle is gone
            conn = idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                open_count -= 1
                conn = None
        try:
            if conn is None:
                open_count += 1
                conn = await connect(port)
            status = await asyncio.wait_for(conn.exchange(raw), 30)
            result.record(status, time.perf_counter() - intended)
            if conn.closed or conn.close_after:
                open_count -= 1
            else:
                idle.append(conn)
        except (OSError, ConnectionError, TimeoutError):
            result.errors += 1
            open_count -= 1

    start = time.perf_counter()
    sent, total = 0, int(rate * duration)
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * rate) + 1)
        while sent < due and (idle or open_count < max_connections):
            task = asyncio.create_task(one(start + sent / rate, raws[sent % len(raws)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(0.0002)
    if tasks:
        await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - start
    for conn in idle:
        if conn.transport is not None:
            conn.transport.close()
    return result


async def stream(port: int, head: bytes, upload: int, on_progress: Callable[[int], None],
                 piece: int = 256 * 1024) -> tuple[int, int, float]:
    """One request with `upload` bytes of zeros sent after `head` (0: none); the response
    body is counted and dropped. Returns (status, response bytes, seconds)."""
    conn = await connect(port)
    start = time.perf_counter()
    waiter = conn.expect()
    await conn.send(head)
    zeros, sent = bytes(piece), 0
    while sent < upload and not waiter.done():
        chunk = zeros if upload - sent >= piece else zeros[:upload - sent]
        await conn.send(chunk)
        sent += len(chunk)
        on_progress(sent)
    while not waiter.done():  # progress while the response body streams in
        await asyncio.wait({waiter}, timeout=0.05)
        on_progress(sent + conn.body_bytes)
    status = await waiter
    if conn.transport is not None:
        conn.transport.close()
    return status, conn.body_bytes, time.perf_counter() - start


def run(coro_factory: Callable[[], object]) -> object:
    """Run one load coroutine on a fresh loop (uvloop when installed)."""
    try:
        import uvloop
        return uvloop.run(coro_factory())  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(coro_factory())  # type: ignore[arg-type]
