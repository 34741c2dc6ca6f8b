"""The banner goes in once, before </body>, however the page is cut into chunks or packed."""

from __future__ import annotations

import gzip
import random
import zlib
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import ClientPayloadError, web
from aiohttp.test_utils import TestServer

from gateway.core.errors import UpstreamUnavailable
from gateway.pipeline.banner import BannerInjector, wants_banner
from tests.support.gateway import audit_lines, impersonate, login

PAGE = b"<html><head><title>x</title></head><body><p>hello</p></BODY ></html>"
BANNER = b"<div id=b>BANNER</div>"
INJECTED = PAGE.replace(b"</BODY >", BANNER + b"</BODY >")


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def two_members(data: bytes) -> bytes:
    half = len(data) // 2
    return gzip.compress(data[:half]) + gzip.compress(data[half:])


PACKERS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "identity": ("", lambda b: b), "gzip": ("gzip", gzip.compress),
    "x-gzip": ("x-gzip", gzip.compress), "deflate-zlib": ("deflate", zlib.compress),
    "deflate-raw": ("deflate", raw_deflate), "gzip-two-members": ("gzip", two_members),
}


def run(injector: BannerInjector, chunks: list[bytes]) -> bytes:
    return b"".join(injector.feed(c) for c in chunks) + injector.finish()


def cut(data: bytes, rng: random.Random) -> list[bytes]:
    chunks, at = [], 0
    while at < len(data):
        step = rng.choice((1, 2, 3, 5, 8, 16, 17, 100, 4096))
        chunks.append(data[at:at + step])
        at += step
    return chunks


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 1000], ids=lambda n: f"chunks-of-{n}")
def test_split_close_tag_found(size: int) -> None:
    """`</BODY >` split across chunks is still found; the banner lands right before it."""
    chunks = [PAGE[i:i + size] for i in range(0, len(PAGE), size)]
    assert run(BannerInjector(BANNER), chunks) == INJECTED


@pytest.mark.parametrize("packing", list(PACKERS))
@pytest.mark.parametrize("seed", range(20))
def test_any_cut_of_any_packing(packing: str, seed: int) -> None:
    """Random cuts of pages of random sizes, in every encoding we open: exactly one banner,
    right before the first </body>, and nothing else changed."""
    rng = random.Random(seed)
    filler = bytes(rng.choice(b"abc <>/de\n") for _ in range(rng.randint(0, 70_000)))
    page = b"<html><body>" + filler.replace(b"</", b"<") + b"</body>\n</html>"
    encoding, pack = PACKERS[packing]
    out = run(BannerInjector(BANNER, encoding), cut(pack(page), rng))
    assert out == page.replace(b"</body>", BANNER + b"</body>")


class HeldBack:
    """A decoder that gives everything only when flushed, as a real one may."""

    def __init__(self) -> None:
        self.data = b""

    def feed(self, chunk: bytes) -> bytes:
        self.data += chunk
        return b""

    def finish(self) -> bytes:
        return self.data


def test_flushed_tail_is_searched() -> None:
    """A </body> that only the decoder's flush releases still gets the banner before it."""
    injector = BannerInjector(BANNER)
    injector.decoder = HeldBack()  # type: ignore[assignment]
    assert run(injector, [PAGE[:20], PAGE[20:]]) == INJECTED


@pytest.mark.parametrize(("body", "expected"), [
    (b"<p>fragment", b"<p>fragment" + BANNER), (b"", b""),
], ids=["no-close-tag", "empty-body"])
def test_without_close_tag(body: bytes, expected: bytes) -> None:
    """No </body>: the banner goes last (still visible); an empty body (204, 304) stays empty."""
    assert run(BannerInjector(BANNER), [body] if body else []) == expected


@pytest.mark.parametrize(("encoding", "body", "reason"), [
    ("gzip", gzip.compress(b"<html><body>" + b"a" * 2_000_000), "upstream_body_too_large"),
    ("deflate", zlib.compress(b"<body>" + b"a" * 2_000_000), "upstream_body_too_large"),
    ("gzip", b"\x1f\x8b\x08\x00garbage-garbage-garbage", "upstream_aborted"),
    ("deflate", b"\x78\x9c" + b"\xff" * 40, "upstream_aborted"),
], ids=["gzip-bomb", "deflate-bomb", "corrupt-gzip", "corrupt-deflate"])
def test_bombs_and_corrupt_bodies_are_refused(encoding: str, body: bytes, reason: str) -> None:
    """A page that unpacks past the limit, or does not unpack, stops the stream."""
    with pytest.raises(UpstreamUnavailable) as caught:
        run(BannerInjector(BANNER, encoding, max_bytes=1_000_000), cut(body, random.Random(1)))
    assert caught.value.reason == reason


def test_limit_is_exact() -> None:
    """A page of exactly the limit passes; one byte more does not."""
    page = b"<body>" + b"a" * 994
    assert run(BannerInjector(BANNER, "gzip", max_bytes=1000), [gzip.compress(page)]) \
        == page + BANNER
    with pytest.raises(UpstreamUnavailable):
        run(BannerInjector(BANNER, "gzip", max_bytes=999), [gzip.compress(page)])


def test_trailing_bytes_after_the_stream_are_ignored() -> None:
    """Padding after a gzip member (some servers send it) does not break the page."""
    out = run(BannerInjector(BANNER, "gzip"), [gzip.compress(PAGE) + b"\x00\x00\x00"])
    assert out == INJECTED


@pytest.mark.parametrize(("ctype", "enc", "expected"), [
    ("text/html; charset=utf-8", "", True), ("TEXT/HTML", "identity", True),
    ("application/xhtml+xml", "gzip", True), ("text/html", "deflate", True),
    ("application/json", "", False), ("text/html", "br", False), ("text/html", "zstd", False),
    ("image/png", "", False), ("text/plain", "", False), ("", "", False),
], ids=["html", "html-identity", "xhtml-gzip", "html-deflate", "json", "brotli-untouched",
        "zstd-untouched", "image", "text", "no-type"])
def test_which_responses_get_a_banner(ctype: str, enc: str, expected: bool) -> None:
    """Only HTML in an encoding we can open; everything else passes untouched."""
    assert wants_banner(ctype, enc) is expected


LONG = b"<html><body>" + b"<p>row</p>" * 20_000 + b"</body></html>"


async def _page(request: web.Request) -> web.StreamResponse:
    """Answers as the path says: encoding, type, and a body in many small writes."""
    kind = request.match_info["kind"]
    body, ctype, encoding = LONG, "text/html", ""
    if kind in ("gzip", "deflate", "br-html", "json-gzip", "bomb"):
        encoding = {"br-html": "br", "json-gzip": "gzip", "bomb": "gzip"}.get(kind, kind)
        if kind == "bomb":
            body = b"<html><body>" + b"a" * 8_000_000
        body = zlib.compress(body) if encoding == "deflate" else gzip.compress(body)
    if kind.startswith("json"):
        ctype = "application/json"
    if request.method == "HEAD":
        return web.Response(content_type="text/html")
    if kind == "not-modified":
        return web.Response(status=304, headers={"Content-Type": "text/html"})
    response = web.StreamResponse(headers={"Content-Type": ctype, **(
        {"Content-Encoding": encoding} if encoding else {})})
    await response.prepare(request)
    for i in range(0, len(body), 1000):
        await response.write(body[i:i + 1000])
    await response.write_eof()
    return response


@pytest.fixture
async def pages() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/products/{kind}", _page)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.mark.parametrize(("kind", "banner", "encoding"), [
    ("plain", True, None), ("gzip", True, None), ("deflate", True, None),
    ("br-html", False, "br"), ("json-gzip", False, "gzip"),
], ids=["plain", "gzip", "deflate", "brotli", "json"])
async def test_through_the_gateway(make_gateway, pages, kind, banner, encoding) -> None:
    """Streamed pages in many chunks reach the CSR opened and bannered, or untouched."""
    client = await make_gateway(pages)
    await login(client, "csr-carol")
    await impersonate(client, "buyer-alice")
    resp = await client.get(f"/products/{kind}", headers={"Accept-Encoding": "identity"},
                            auto_decompress=False)
    raw = await resp.read()
    assert resp.status == 200 and resp.headers.get("Content-Encoding") == encoding
    if banner:
        assert raw.count(b"Logged In As Alice Anders (Acme Corp)") == 1
        assert raw.endswith(b"</body></html>") and raw.startswith(b"<html><body><p>row")
    else:
        assert b"Logged In As" not in raw and raw[:2] == b"\x1f\x8b"


async def test_304_and_head_get_no_body(make_gateway, pages) -> None:
    """Bodyless answers stay bodyless."""
    client = await make_gateway(pages)
    await login(client, "csr-carol")
    await impersonate(client, "buyer-alice")
    resp = await client.get("/products/not-modified")
    assert resp.status == 304 and await resp.read() == b""
    head = await client.head("/products/plain")
    assert head.status == 200 and await head.read() == b""


async def test_bomb_through_the_gateway_is_cut(make_gateway, pages) -> None:
    """A compressed page over limits.banner_max_bytes is cut off, not buffered or passed."""
    client = await make_gateway(pages, limits={"banner_max_bytes": 1_000_000})
    await login(client, "csr-carol")
    await impersonate(client, "buyer-alice")
    resp = await client.get("/products/bomb")
    with pytest.raises(ClientPayloadError):
        await resp.read()
    line = [r for r in audit_lines(client) if r["path"] == "/products/bomb"][-1]
    assert line["outcome"] == "aborted" and line["bytes_sent"] < 1_100_000
