"""HTTP/1.1 message framing shared by the bench's raw-asyncio client and stand-in shop.

A head, then a body by Content-Length, by chunks, or (responses only) until the peer
closes; `message_done` runs at the end of each message. Nothing is kept but counts.
"""

from __future__ import annotations


class Framing:
    """Mixin for an asyncio.Protocol: feed `buf`, call `step()` until it returns False."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.mode = "head"  # head | length | chunk-size | chunk-data | trailer | eof
        self.left = 0  # body bytes still to take in `length` / `chunk-data`

    def parse_head(self, raw: bytes) -> None:
        raise NotImplementedError

    def message_done(self) -> None:
        raise NotImplementedError

    def body_taken(self, count: int) -> None:
        """Body bytes consumed (chunk framing taken back as -2); counted by the client."""

    def step(self) -> bool:
        """Advance by one parse step; False when more bytes are needed."""
        if self.mode in ("length", "chunk-data", "eof"):
            return self.skip()
        end = self.buf.find(b"\r\n\r\n" if self.mode == "head" else b"\r\n")
        if end < 0:
            return False
        line = bytes(self.buf[:end])
        del self.buf[:end + (4 if self.mode == "head" else 2)]
        if self.mode == "head":
            self.parse_head(line)
        elif self.mode == "chunk-size":
            size = int(line.split(b";")[0], 16)
            self.mode, self.left = ("chunk-data", size + 2) if size else ("trailer", 0)
        elif not line:  # the empty line after the last chunk (and any trailers)
            self.message_done()
        return True

    def skip(self) -> bool:
        taken = len(self.buf) if self.mode == "eof" else min(self.left, len(self.buf))
        del self.buf[:taken]
        self.body_taken(taken)
        if self.mode == "eof":
            return False
        self.left -= taken
        if self.left:
            return False
        if self.mode == "chunk-data":
            self.body_taken(-2)
            self.mode = "chunk-size"
        else:
            self.message_done()
        return True
