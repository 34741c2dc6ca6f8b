"""The floor for our runtime: the least an aiohttp reverse proxy can do, nothing else.

Same transport choices as the gateway (uvloop when installed, streaming both ways,
DummyCookieJar, no decompression, no redirects) and no policy, session or audit.
Run it as `python -m bench.minproxy --port P --upstream URL [--workers N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import signal

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade", "host", "content-length", "expect"})
CHUNK = 64 * 1024
CLIENT = web.AppKey("client", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


async def body(request: web.Request) -> object:
    async for chunk in request.content.iter_chunked(CHUNK):
        yield chunk


async def handle(request: web.Request) -> web.StreamResponse:
    headers = CIMultiDict((k, v) for k, v in request.headers.items()
                          if k.lower() not in HOP_BY_HOP)
    url = URL(request.app[UPSTREAM] + request.raw_path, encoded=True)
    data = body(request) if request.body_exists else None
    async with request.app[CLIENT].request(request.method, url, headers=headers, data=data,
                                           allow_redirects=False) as upstream:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for name, value in upstream.headers.items():
            if name.lower() not in HOP_BY_HOP or name.lower() == "content-length":
                response.headers.add(name, value)
        await response.prepare(request)
        async for chunk in upstream.content.iter_chunked(CHUNK):
            await response.write(chunk)
        await response.write_eof()
        return response


async def _client(app: web.Application):  # type: ignore[no-untyped-def]
    app[CLIENT] = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, limit_per_host=0),
        cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_read=60),
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"))
    yield
    await app[CLIENT].close()


def make_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")
    app.cleanup_ctx.append(_client)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def serve(port: int, upstream: str, reuse_port: bool) -> None:
    runner = web.AppRunner(make_app(upstream), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_port=reuse_port or None,
                      backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def _worker(port: int, upstream: str, reuse_port: bool) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(port, upstream, reuse_port))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.workers <= 1:
        _worker(args.port, args.upstream, False)
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(args.port, args.upstream, True))
             for _ in range(args.workers)]
    for proc in procs:
        proc.start()

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.pid:
                proc.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in procs:
        proc.join()


if __name__ == "__main__":
    main()
