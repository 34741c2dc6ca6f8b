"""The banner goes in once, before </body>, however the page is cut into chunks."""

from __future__ import annotations

import gzip
import zlib

import pytest

from gateway.banner import BannerInjector, wants_banner
from gateway.errors import UpstreamUnavailable

PAGE = b"<html><head><title>x</title></head><body><p>hello</p></BODY ></html>"
BANNER = b"<div id=b>BANNER</div>"


def run(injector: BannerInjector, chunks: list[bytes]) -> bytes:
    return b"".join(injector.feed(c) for c in chunks) + injector.finish()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 1000], ids=lambda n: f"chunks-of-{n}")
def test_split_close_tag_found(size: int) -> None:
    """`</BODY >` split across chunks is still found; the banner lands right before it."""
    chunks = [PAGE[i:i + size] for i in range(0, len(PAGE), size)]
    out = run(BannerInjector(BANNER), chunks)
    assert out == PAGE.replace(b"</BODY >", BANNER + b"</BODY >")


@pytest.mark.parametrize(("encoding", "compress"), [
    ("gzip", gzip.compress), ("deflate", zlib.compress)], ids=["gzip", "deflate"])
def test_compressed_pages(encoding: str, compress) -> None:  # type: ignore[no-untyped-def]
    """gzip and deflate pages are opened, injected and sent as identity."""
    body = compress(PAGE)
    chunks = [body[i:i + 5] for i in range(0, len(body), 5)]
    out = run(BannerInjector(BANNER, encoding), chunks)
    assert out == PAGE.replace(b"</BODY >", BANNER + b"</BODY >")


def test_no_close_tag_appends() -> None:
    """A page without </body> still shows who is acting."""
    assert run(BannerInjector(BANNER), [b"<p>fragment"]) == b"<p>fragment" + BANNER


def test_compressed_bomb_refused() -> None:
    """A page that decompresses past the limit is refused, not buffered."""
    bomb = gzip.compress(b"<html><body>" + b"a" * 5_000_000)
    with pytest.raises(UpstreamUnavailable):
        run(BannerInjector(BANNER, "gzip", max_bytes=1_000_000), [bomb])


@pytest.mark.parametrize(("ctype", "enc", "expected"), [
    ("text/html; charset=utf-8", "", True), ("application/xhtml+xml", "gzip", True),
    ("application/json", "", False), ("text/html", "br", False), ("image/png", "", False),
], ids=["html", "xhtml-gzip", "json", "brotli-untouched", "image"])
def test_which_responses_get_a_banner(ctype: str, enc: str, expected: bool) -> None:
    """Only HTML in an encoding we can open; everything else passes untouched."""
    assert wants_banner(ctype, enc) is expected
