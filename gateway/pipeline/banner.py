"""Injects the impersonation banner before </body> of HTML pages, chunk by chunk."""

from __future__ import annotations

import re
import zlib

from gateway.core.errors import UpstreamUnavailable

CLOSE_BODY = re.compile(rb"</body\s*>", re.IGNORECASE)
KEEP = 16  # bytes held back so a split "</body >" across chunks is still found
GZIP, ZLIB, RAW_DEFLATE = 16 + zlib.MAX_WBITS, zlib.MAX_WBITS, -zlib.MAX_WBITS
DECODERS = {"gzip": GZIP, "x-gzip": GZIP, "deflate": ZLIB}


def wants_banner(content_type: str, content_encoding: str) -> bool:
    """HTML in an encoding we can open; other bodies pass through untouched."""
    if not content_type.lower().startswith(("text/html", "application/xhtml+xml")):
        return False
    return content_encoding.strip().lower() in ("", "identity", *DECODERS)


def _too_large() -> UpstreamUnavailable:
    return UpstreamUnavailable("upstream_body_too_large",
                               detail="decompressed page over the banner limit")


class Decompressor:
    """gzip (every member) or deflate (zlib-wrapped or raw, as servers send both), capped."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.wbits, self.limit, self.produced = DECODERS[encoding], limit, 0
        self.head = b""  # deflate: the first bytes, until the wrapping is known
        self.z: zlib._Decompress | None = None

    def feed(self, data: bytes) -> bytes:
        if self.z is None:
            self.head += data
            if len(self.head) < 2:
                return b""
            cmf_flg = int.from_bytes(self.head[:2], "big")
            if self.wbits == ZLIB and (cmf_flg % 31 or self.head[0] & 0x0F != 8):
                self.wbits = RAW_DEFLATE  # no zlib header: a raw deflate stream
            self.z, data, self.head = zlib.decompressobj(self.wbits), self.head, b""
        try:
            return self._inflate(data)
        except zlib.error as exc:
            raise UpstreamUnavailable("upstream_aborted",
                                      detail=f"corrupt compressed page: {exc}") from exc

    def _inflate(self, data: bytes) -> bytes:
        assert self.z is not None
        out = []
        while data:
            piece = self.z.decompress(data, self.limit - self.produced + 1)
            self.produced += len(piece)
            if self.produced > self.limit:
                raise _too_large()
            out.append(piece)
            data = self.z.unconsumed_tail
            if self.z.eof:
                data = self.z.unused_data
                if self.wbits != GZIP or not data.startswith(b"\x1f\x8b"):
                    break  # trailing bytes after the stream: ignored, as browsers do
                self.z = zlib.decompressobj(GZIP)  # the next gzip member
        return b"".join(out)

    def finish(self) -> bytes:
        if self.z is None:
            return b""  # fewer than two bytes: nothing to show
        try:
            rest = self.z.flush()
        except zlib.error:
            return b""  # a truncated stream: send what was whole
        self.produced += len(rest)
        if self.produced > self.limit:
            raise _too_large()
        return rest


class BannerInjector:
    """Feed upstream chunks in, get chunks out; the banner goes in once, before </body>."""

    def __init__(self, banner: bytes, content_encoding: str = "", max_bytes: int = 5 << 20):
        self.banner = banner
        self.done = False
        self.pending = b""
        self.seen = 0
        encoding = content_encoding.strip().lower()
        self.decoder = Decompressor(encoding, max_bytes) if encoding in DECODERS else None

    def feed(self, chunk: bytes) -> bytes:
        if self.decoder is not None:
            chunk = self.decoder.feed(chunk)
        return self._scan(chunk)

    def _scan(self, chunk: bytes) -> bytes:
        self.seen += len(chunk)
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
        """The rest, the decoder's tail searched like any chunk; no </body>: banner last."""
        out = self._scan(self.decoder.finish()) if self.decoder is not None else b""
        tail, self.pending = self.pending, b""
        if self.done or self.seen == 0:  # an empty body (204, 304) stays empty
            self.done = True
            return out + tail
        self.done = True
        return out + tail + self.banner  # no </body>: still show who is acting
