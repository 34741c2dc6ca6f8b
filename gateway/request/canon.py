"""One canonical path: decode once, resolve dot segments, refuse anything ambiguous."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from gateway.core.errors import BadRequest

MAX_PATH_BYTES = 2048
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SEGMENT_SAFE = "!$&'()*+,;=:@-._~"


@dataclass(frozen=True, slots=True)
class Target:
    """The decided-on path (decoded) and exactly what goes upstream (`wire`)."""

    path: str
    query: str = ""

    @property
    def wire(self) -> str:
        encoded = quote(self.path, safe="/" + SEGMENT_SAFE)
        return f"{encoded}?{self.query}" if self.query else encoded


def refuse(why: str) -> BadRequest:
    return BadRequest("bad_path", "The request path is not acceptable.", detail=why)


# Already canonical: safe characters only, no empty, "." or ".." segments. Every repeated
# group starts with a literal "/" or ".", so a match never backtracks more than linearly
# (an optional dot here once let one request spin the loop for minutes: see
# tests/unit/test_pathcanon.py::test_adversarial_paths_are_decided_in_linear_time).
_PLAIN = re.compile(r"^(?:/[A-Za-z0-9_\-~]+(?:\.[A-Za-z0-9_\-~]+)*)+/?$|^/$")
_PLAIN_QUERY = re.compile(r"^[A-Za-z0-9_\-.~=&+,:@!$'()*/]*$")


def canonicalize(target: str, *, allow_semicolon: bool = False) -> Target:
    path, sep, query = target.partition("?")
    if len(path) <= MAX_PATH_BYTES and _PLAIN.match(path) and \
            (not sep or _PLAIN_QUERY.match(query)):
        return Target(path, query)  # the common case: nothing to decode or resolve
    return _canonicalize(target, allow_semicolon)


def _canonicalize(target: str, allow_semicolon: bool) -> Target:
    if not target.startswith("/"):
        raise refuse("absolute-form target" if "://" in target else "not origin-form")
    if "#" in target:
        raise refuse("fragment")
    raw, _, query = target.partition("?")
    _check_query(query)
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise refuse("too long")
    _check_raw(raw, allow_semicolon)
    decoded = _decode(raw)
    if _CONTROL.search(decoded):
        raise refuse("control character")
    if "\\" in decoded:
        raise refuse("backslash")
    if ";" in decoded and not allow_semicolon:
        raise refuse("path parameter")
    return Target(_resolve(decoded), query)


def _check_raw(raw: str, allow_semicolon: bool) -> None:
    if _BAD_ESCAPE.search(raw):
        raise refuse("invalid percent-escape")
    if _CONTROL.search(raw) or " " in raw:
        raise refuse("control character")
    if "\\" in raw:
        raise refuse("backslash")
    lowered = raw.lower()
    if "%2f" in lowered or "%5c" in lowered:
        raise refuse("encoded slash")
    if re.search(r"%25[0-9a-f]{2}", lowered):
        raise refuse("double encoding")
    if ";" in raw and not allow_semicolon:
        raise refuse("path parameter")


def _decode(raw: str) -> str:
    """Percent-escapes become bytes, raw characters their UTF-8; the whole must be UTF-8."""
    buffer = bytearray()
    pos = 0
    try:
        for m in _ESCAPE.finditer(raw):
            buffer += raw[pos:m.start()].encode("utf-8", "strict")
            buffer.append(int(m.group(1), 16))
            pos = m.end()
        buffer += raw[pos:].encode("utf-8", "strict")
        return buffer.decode("utf-8", "strict")
    except UnicodeError as exc:
        raise refuse("invalid utf-8") from exc


def _resolve(decoded: str) -> str:
    out: list[str] = []
    parts = decoded.split("/")[1:]
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                raise refuse("dot segment above root")
            out.pop()
        else:
            out.append(part)
    trailing = decoded.endswith("/") or parts[-1:] in (["."], [".."])
    path = "/" + "/".join(out)
    return path + "/" if trailing and out else path


def _check_query(query: str) -> None:
    if _CONTROL.search(query) or " " in query or "#" in query:
        raise refuse("bad query")
    if _BAD_ESCAPE.search(query):
        raise refuse("invalid percent-escape in query")

