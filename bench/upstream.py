"""A fast stand-in shop on raw asyncio (used when nginx is not installed).

Paths: `/products/download-<N>` answers N bytes (`1m`, `1g`: MiB, GiB); `/saved-jobs` reads
and discards any body; anything else is a small HTML page. Keep-alive, Content-Length and
chunked request bodies; run it as `python -m bench.upstream PORT`.
"""

from __future__ import annotations

import asyncio
import sys

from bench.framing import Framing

PAGE = (b"<!doctype html><html><head><title>Shop</title></head><body><h1>Storefront</h1>"
        + b"<p>" + b"Product text. " * 30 + b"</p></body></html>\n")
ZEROS = bytes(256 * 1024)
UNITS = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


def download_size(path: bytes) -> int | None:
    if not path.startswith(b"/products/download-"):
        return None
    spec = path.rsplit(b"-", 1)[1].decode().lower()
    try:
        return int(spec[:-1]) * UNITS[spec[-1]] if spec[-1:] in UNITS else int(spec)
    except ValueError:
        return None


def head(status: bytes, ctype: bytes, length: int) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\nServer: bench-upstream\r\nContent-Type: " + ctype
            + b"\r\nContent-Length: " + str(length).encode() + b"\r\n\r\n")


PAGE_RESPONSE = head(b"200 OK", b"text/html; charset=utf-8", len(PAGE)) + PAGE
OK_RESPONSE = head(b"200 OK", b"text/plain", 3) + b"ok\n"


class ShopProtocol(Framing, asyncio.Protocol):
    """One connection: parse a request head, skip its body, answer, repeat."""

    def __init__(self) -> None:
        Framing.__init__(self)
        self.transport: asyncio.Transport | None = None
        self.path = b""
        self.sending = False
        self.task: asyncio.Task[None] | None = None
        self.writable = asyncio.Event()
        self.writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()  # a download in progress sees is_closing() and stops

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while not self.sending and self.step():
            pass

    def parse_head(self, raw: bytes) -> None:
        lines = raw.split(b"\r\n")
        parts = lines[0].split(b" ")
        self.path = parts[1] if len(parts) > 1 else b"/"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length" and int(value):
                self.mode, self.left = "length", int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                self.mode = "chunk-size"
        if self.mode == "head":
            self.message_done()

    def message_done(self) -> None:
        assert self.transport is not None
        self.mode = "head"
        size = download_size(self.path)
        if size is None:
            self.transport.write(OK_RESPONSE if self.path == b"/saved-jobs" else PAGE_RESPONSE)
            return
        self.sending = True
        self.task = asyncio.get_running_loop().create_task(self.send_download(size))

    async def send_download(self, size: int) -> None:
        assert self.transport is not None
        self.transport.write(head(b"200 OK", b"application/octet-stream", size))
        left = size
        while left > 0 and not self.transport.is_closing():
            await self.writable.wait()
            piece = ZEROS if left >= len(ZEROS) else ZEROS[:left]
            self.transport.write(piece)
            left -= len(piece)
        self.sending = False
        while self.step():
            pass


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(ShopProtocol, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(int(argv[0])))


if __name__ == "__main__":
    main(sys.argv[1:])
