"""Injects the impersonation banner before </body> of HTML pages, chunk by chunk."""

from __future__ import annotations

import re
import zlib

from gateway.errors import UpstreamUnavailable

CLOSE_BODY = re.compile(rb"</body\s*>", re.IGNORECASE)
KEEP = 16  # bytes held back so a split "</body >" across chunks is still found
DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def wants_banner(content_type: str, content_encoding: str) -> bool:
    """HTML in an encoding we can open; other bodies pass through untouched."""
    if not content_type.lower().startswith(("text/html", "application/xhtml+xml")):
        return False
    return content_encoding.lower() in ("", "identity", *DECODERS)


class BannerInjector:
    """Feed upstream chunks in, get chunks out; the banner goes in once, before </body>."""

    def __init__(self, banner: bytes, content_encoding: str = "", max_bytes: int = 5 << 20):
        self.banner = banner
        self.done = False
        self.pending = b""
        self.seen = 0
        self.max_bytes = max_bytes
        encoding = content_encoding.lower()
        self.decoder = zlib.decompressobj(DECODERS[encoding]) if encoding in DECODERS else None

    def feed(self, chunk: bytes) -> bytes:
        if self.decoder is not None:
            chunk = self.decoder.decompress(chunk, self.max_bytes)
            if self.decoder.unconsumed_tail:
                raise UpstreamUnavailable("upstream_body_too_large",
                                          detail="compressed page over the banner limit")
        return self._scan(chunk)

    def _scan(self, chunk: bytes) -> bytes:
        self.seen += len(chunk)
        if self.seen > self.max_bytes and self.decoder is not None:
            raise UpstreamUnavailable("upstream_body_too_large",
                                      detail="decompressed page over the banner limit")
        if self.done:
            return chunk
        data = self.pending + chunk
        found = CLOSE_BODY.search(data)
        if found:
            self.done, self.pending = True, b""
            return data[:found.start()] + self.banner + data[found.start():]
        self.pending = data[-KEEP:]
        return data[:-KEEP]

    def finish(self) -> bytes:
        out = self._scan(self.decoder.flush()) if self.decoder is not None else b""
        tail, self.pending = self.pending, b""
        if not self.done:
            self.done = True
            return out + tail + self.banner  # no </body>: still show who is acting
        return out + tail
