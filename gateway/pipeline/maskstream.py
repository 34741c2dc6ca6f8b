"""Masking on the forwarding path: which responses, how they are opened, and the relay.

A masked page reaches the CSR masked or not at all: a body that cannot be opened (an
unknown encoding or type, partial content, JSON too large or malformed) is refused with a
502 before anything is sent; text streams through a bounded window.
"""

from __future__ import annotations

import codecs
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import orjson
from aiohttp import web

from gateway.core.domain import Actor
from gateway.core.errors import Forbidden, UpstreamTimeout, UpstreamUnavailable
from gateway.core.maskrules import MaskingSettings, PageMask
from gateway.pipeline.banner import DECODERS, Decompressor
from gateway.pipeline.masking import JsonMasker, TextMasker, hidden_fields, text_patterns
from gateway.runtime.context import RequestContext
from gateway.runtime.gateway import Gateway
from gateway.runtime.impersonation import as_self
from gateway.services.upstream import UpstreamResponse

CHUNK = 64 * 1024
# request headers that would let the shop answer with something we cannot mask whole
REQUEST_DROPS = frozenset({"accept-encoding", "range", "if-range"})
# response headers that describe the body before it was masked
RESPONSE_DROPS = ("Content-Length", "Content-Encoding", "ETag", "Content-MD5", "Digest",
                  "Accept-Ranges", "Content-Range")
TEXT_TYPES = ("text/", "application/xhtml+xml", "application/xml", "application/javascript",
              "application/ecmascript")


class Stage(Protocol):
    def feed(self, chunk: bytes) -> bytes: ...
    def finish(self) -> bytes: ...


class BodyFilter(Stage, Protocol):
    whole: bool  # True: needs the whole body before anything can be sent


@dataclass
class MaskPlan:
    """What to mask in this request's response, decided once the policy allowed it."""

    settings: MaskingSettings
    rule: PageMask
    hidden: set[str]
    counts: Counter[str] = field(default_factory=Counter)


def plan(gw: Gateway, ctx: RequestContext, actor: Actor | None) -> MaskPlan | None:
    """Masking applies to a page with rules while a CSR acts for a buyer; each field stays
    masked unless the policy's `unmask(actor, buyer, field)` says otherwise."""
    if actor is None or actor.acting_as is None:
        return None
    rule = gw.settings.masking.for_page(ctx.page)
    if rule is None or not rule.fields():
        return None
    me, buyer = as_self(actor), actor.acting_as
    unmasked = {name for name in rule.fields()
                if gw.policy.unmask(me, buyer, name, gw.directory.snapshot)}
    found = MaskPlan(gw.settings.masking, rule, hidden_fields(rule, unmasked))
    ctx.extra["masked"] = found.counts  # filled while the body streams
    if unmasked:
        ctx.extra["unmasked"] = sorted(unmasked)
    return found


def refuse_unmaskable(gw: Gateway, ctx: RequestContext, actor: Actor | None) -> None:
    """Forward-auth never sees the answer, so it cannot mask it: a masked page for an
    impersonating CSR is refused there rather than shown whole."""
    found = plan(gw, ctx, actor)
    if found is not None and found.hidden:
        ctx.extra.pop("masked", None)
        ctx.deny("masking_needs_proxy", ctx.policy_rev)
        raise Forbidden("masking_needs_proxy", detail=", ".join(sorted(found.hidden)))


def request_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The whole body, in an encoding we can open: no ranges, identity preferred."""
    kept = [(k, v) for k, v in headers if k.lower() not in REQUEST_DROPS]
    return [*kept, ("Accept-Encoding", "identity")]


def _refuse(detail: str) -> UpstreamUnavailable:
    return UpstreamUnavailable("masking_unsupported", detail=detail)


def body_filter(mask: MaskPlan, method: str, upstream: UpstreamResponse) -> BodyFilter | None:
    """The filter that masks this response (None: it has no body); refused if none can."""
    if method == "HEAD" or upstream.status in (204, 304) or upstream.status < 200:
        return None
    if upstream.status == 206:
        raise _refuse("partial content")
    encoding = upstream.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity", *DECODERS):
        raise _refuse(f"content encoding {encoding[:40]}")
    decoder = Decompressor(encoding, mask.settings.max_decompressed_bytes) \
        if encoding in DECODERS else None
    ctype = upstream.headers.get("Content-Type", "")
    kind, _, params = ctype.partition(";")
    kind = kind.strip().lower()
    charset = _charset(params)
    if kind.endswith(("/json", "+json")):
        return JsonBody(mask, decoder, charset or "utf-8")
    if not kind or kind.startswith(TEXT_TYPES) or kind.endswith("+xml"):
        return TextBody(mask, decoder, charset or "utf-8")
    if upstream.content_length == 0:
        return None
    raise _refuse(f"content type {kind[:60]}")


def _charset(params: str) -> str | None:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            found = value.strip().strip('"')
            try:
                return codecs.lookup(found).name
            except LookupError:
                raise _refuse(f"charset {found[:40]}") from None
    return None


class TextBody:
    """Bytes in, masked bytes out: opened, decoded incrementally, masked, encoded again."""

    whole = False

    def __init__(self, mask: MaskPlan, decoder: Decompressor | None, charset: str) -> None:
        self.decoder = decoder
        self.text = codecs.getincrementaldecoder(charset)(errors="surrogateescape")
        self.bytes = codecs.getincrementalencoder(charset)(errors="surrogateescape")
        patterns = text_patterns(mask.settings, mask.rule, mask.hidden)
        self.masker = TextMasker(patterns, mask.settings.window_chars, mask.counts)

    def feed(self, chunk: bytes) -> bytes:
        if self.decoder is not None:
            chunk = self.decoder.feed(chunk)
        return self._out(self.masker.feed(self._text(chunk, False)))

    def finish(self) -> bytes:
        rest = self.decoder.finish() if self.decoder is not None else b""
        last = self.masker.feed(self._text(rest, True)) + self.masker.finish()
        return self._out(last, final=True)

    def _text(self, data: bytes, final: bool) -> str:
        try:
            return self.text.decode(data, final)
        except UnicodeError as exc:
            raise _refuse(f"undecodable text: {exc}") from exc

    def _out(self, text: str, final: bool = False) -> bytes:
        return self.bytes.encode(text, final)


class JsonBody:
    """Collects the whole document (up to masking.json_max_bytes), then masks it parsed."""

    whole = True

    def __init__(self, mask: MaskPlan, decoder: Decompressor | None, charset: str) -> None:
        self.mask, self.decoder, self.charset = mask, decoder, charset
        self.parts: list[bytes] = []
        self.size = 0

    def feed(self, chunk: bytes) -> bytes:
        if self.decoder is not None:
            chunk = self.decoder.feed(chunk)
        self.size += len(chunk)
        if self.size > self.mask.settings.json_max_bytes:
            raise UpstreamUnavailable(
                "masking_body_too_large",
                detail=f"JSON over masking.json_max_bytes ({self.mask.settings.json_max_bytes})")
        self.parts.append(chunk)
        return b""

    def finish(self) -> bytes:
        if self.decoder is not None:
            self.feed(self.decoder.finish())
        raw = b"".join(self.parts)
        if not raw.strip():
            return raw
        try:
            document = orjson.loads(raw.decode(self.charset))
        except (orjson.JSONDecodeError, UnicodeError) as exc:
            raise _refuse("malformed JSON") from exc
        mask, settings = self.mask, self.mask.settings
        masker = JsonMasker(settings, mask.rule, mask.hidden,
                            text_patterns(settings, mask.rule, mask.hidden), mask.counts)
        return orjson.dumps(masker.mask(document))


class Chain:
    """The masker first, then (for HTML) the banner injector on what it gives."""

    def __init__(self, first: BodyFilter, then: Stage | None) -> None:
        self.first, self.then, self.whole = first, then, first.whole
        self.decoder = getattr(first, "decoder", None)

    def feed(self, chunk: bytes) -> bytes:
        out = self.first.feed(chunk)
        return self.then.feed(out) if self.then is not None and out else out

    def finish(self) -> bytes:
        out = self.first.finish()
        if self.then is None:
            return out
        return self.then.feed(out) + self.then.finish() if out else self.then.finish()


def masked_head(response: web.StreamResponse) -> None:
    for name in RESPONSE_DROPS:
        response.headers.popall(name, None)


async def send_whole(request: web.Request, ctx: RequestContext, upstream: UpstreamResponse,
                     response: web.StreamResponse, body: Stage) -> web.StreamResponse:
    """Read and mask everything before the head goes out: a refusal is then a clean 502."""
    try:
        async for chunk in upstream.content.iter_chunked(CHUNK):
            body.feed(chunk)
    except aiohttp.ClientPayloadError as exc:
        raise UpstreamUnavailable("upstream_aborted", detail="body cut short") from exc
    except TimeoutError as exc:
        raise UpstreamTimeout("upstream_timeout", detail="body stalled") from exc
    out = body.finish()
    response.content_length = len(out)
    await response.prepare(request)
    await response.write_eof(out)
    ctx.bytes_sent = len(out)
    return response
