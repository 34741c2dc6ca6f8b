"""Request framing and smuggling: refused and audited, under both aiohttp HTTP parsers."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.support.processes import (
    RunningGateway,
    start_gateway_process,
    stop_process,
    write_config,
)
from tests.support.services import free_port

PARSERS = {"c-parser": {}, "python-parser": {"AIOHTTP_NO_EXTENSIONS": "1"}}


@pytest.fixture(params=list(PARSERS), scope="module")
def running(request, tmp_path_factory, seeded_directory) -> RunningGateway:
    """A real `csr-gateway run` process per parser, in front of a dead upstream port."""
    tmp = tmp_path_factory.mktemp(request.param)
    shutil.copyfile(seeded_directory, tmp / "directory.sqlite3")
    port = free_port()
    config = write_config(tmp, f"http://127.0.0.1:{free_port()}", port,
                          audit={"fsync": "always"})
    extra = ("--allow-python-parser",) if request.param == "python-parser" else ()
    proc = start_gateway_process(config, port, PARSERS[request.param], extra)
    yield RunningGateway(port, tmp / "audit.jsonl", proc)
    stop_process(proc)


async def send_raw(port: int, data: bytes, wait: float = 3.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    chunks = b""
    try:
        while not _complete(chunks):
            chunk = await asyncio.wait_for(reader.read(65536), wait)
            if not chunk:
                break
            chunks += chunk
    except (TimeoutError, ConnectionError):
        pass
    writer.close()
    return chunks


def _complete(data: bytes) -> bool:
    """One whole response (head and Content-Length body) has arrived."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or head.startswith(b"HTTP/1.1 100"):
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


H = b"Host: x\r\n"
SMUGGLING = {
    "cl-and-te": b"POST /cart/add HTTP/1.1\r\n" + H +
                 b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate-cl": b"POST /cart/add HTTP/1.1\r\n" + H +
                    b"Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    "cl-list": b"POST /cart/add HTTP/1.1\r\n" + H + b"Content-Length: 4, 4\r\n\r\nabcd",
    "negative-cl": b"POST /cart/add HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n",
    "plus-cl": b"POST /cart/add HTTP/1.1\r\n" + H + b"Content-Length: +4\r\n\r\nabcd",
    "te-obfuscated": b"POST /cart/add HTTP/1.1\r\n" + H +
                     b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te-space-before-colon": b"POST /cart/add HTTP/1.1\r\n" + H +
                             b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "te-double": b"POST /cart/add HTTP/1.1\r\n" + H +
                 b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "te-identity": b"POST /cart/add HTTP/1.1\r\n" + H +
                   b"Transfer-Encoding: identity\r\n\r\n",
    "bad-chunk-size": b"POST /cart/add HTTP/1.1\r\n" + H +
                      b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "header-line-folding": b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n X-Remote-User: x\r\n\r\n",
    "bare-lf-in-header": b"GET / HTTP/1.1\r\nHost: x\nX-Remote-User: admin-ann\r\n\r\n",
    "nul-in-header": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n",
    "http-0.9": b"GET /\r\n\r\n",
}


@pytest.mark.parametrize("name", list(SMUGGLING))
async def test_smuggling_refused_and_audited(running: RunningGateway, name: str) -> None:
    """Ambiguous framing gets a 400 (or a closed connection) and one audit line; never a 2xx."""
    before = len(running.audit())
    answer = await send_raw(running.port, SMUGGLING[name])
    status_line = answer.split(b"\r\n", 1)[0]
    assert b" 200 " not in status_line and b" 303 " not in status_line, answer[:200]
    assert answer == b"" or b" 400 " in status_line or b" 401 " in status_line, status_line
    await asyncio.sleep(0.05)
    lines = running.audit()[before:]
    if answer:
        assert lines, "a refused request leaves an audit line"
        assert lines[-1]["decision"] == "deny"


@pytest.mark.parametrize(("raw", "status"), [
    (b"TRACE / HTTP/1.1\r\n" + H + b"\r\n", b"405"),
    (b"BREW / HTTP/1.1\r\n" + H + b"\r\n", b"40"),
    (b"CONNECT x:443 HTTP/1.1\r\n" + H + b"\r\n", b"400"),
    (b"GET http://x/admin HTTP/1.1\r\n" + H + b"\r\n", b"400"),
    (b"GET / HTTP/1.1\r\n" + H + b"Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
     b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", b"40"),
], ids=["trace", "unknown-method", "connect", "absolute-form", "h2c"])
async def test_methods_and_forms_refused(running: RunningGateway, raw: bytes,
                                         status: bytes) -> None:
    """TRACE, CONNECT, unknown methods, absolute-form targets and h2c are refused."""
    answer = await send_raw(running.port, raw, wait=2)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1].startswith(status), answer[:100]


async def test_expect_continue_only_after_policy(running: RunningGateway) -> None:
    """An unauthenticated `Expect: 100-continue` gets its refusal, never a 100 Continue."""
    answer = await send_raw(running.port, b"POST /cart/add HTTP/1.1\r\n" + H +
                            b"Content-Length: 5\r\nExpect: 100-continue\r\n"
                            b"Accept: application/json\r\n\r\n", wait=2)
    assert not answer.startswith(b"HTTP/1.1 100")
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 401 Unauthorized"


async def test_python_parser_refused_without_flag(tmp_path: Path, seeded_directory) -> None:
    """`run` refuses to start on the pure-Python parser unless told to."""
    import subprocess
    import sys

    shutil.copyfile(seeded_directory, tmp_path / "directory.sqlite3")
    config = write_config(tmp_path, "http://127.0.0.1:9", free_port())
    result = subprocess.run([sys.executable, "-m", "gateway", "run", "--config", str(config)],
                            env={**__import__("os").environ, "AIOHTTP_NO_EXTENSIONS": "1"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "C HTTP parser" in result.stderr
