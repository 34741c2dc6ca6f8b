"""The `masking:` configuration: named patterns and, per page, what to mask; validated once."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.yamlsrc import Source

# Built in, each bounded so a match always fits the streaming window. Cards are also
# Luhn-checked and phones need 8-15 digits (masking.py): order numbers and dates stay.
CARD = r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])"
EMAIL = (r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,4}"
         r"[A-Za-z]{2,24}(?![\w-])")
PHONE = (r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
         r"|\(\d{2,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w])")
BUILTIN: dict[str, tuple[str, int]] = {"card": (CARD, 4), "email": (EMAIL, 0),
                                       "phone": (PHONE, 2)}
SEGMENT = re.compile(r"^(?:\*|[^.\[\]*]+)(?:\[\])?$")


@dataclass(frozen=True)
class MaskPattern:
    """A kind of data found in text: its regex and how many trailing characters stay."""

    name: str
    regex: str
    keep_last: int = 0

    @property
    def compiled(self) -> re.Pattern[str]:
        return _compiled(self.regex)


@dataclass(frozen=True)
class PageMask:
    """What to mask on one page: patterns in text (and JSON strings), JSON fields by path."""

    text: tuple[str, ...] = ()
    json: Mapping[str, str] = field(default_factory=dict)  # path -> field name

    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.text, *self.json.values())))


@dataclass(frozen=True)
class MaskingSettings:
    json_max_bytes: int = 4 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    window_chars: int = 512
    patterns: Mapping[str, MaskPattern] = field(default_factory=dict)  # operators' own
    pages: Mapping[str, PageMask] = field(default_factory=dict)  # "*": every other page

    def pattern(self, name: str) -> MaskPattern | None:
        found = self.patterns.get(name)
        if found is None and name in BUILTIN:
            regex, keep = BUILTIN[name]
            return MaskPattern(name, regex, keep)
        return found

    def for_page(self, page: str | None) -> PageMask | None:
        return self.pages.get(page or "") or self.pages.get("*")


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(regex: str) -> re.Pattern[str]:
    found = _CACHE.get(regex)
    if found is None:
        found = _CACHE[regex] = re.compile(regex)
    return found


def max_width(regex: str) -> int | None:
    """The longest text the regex can match (None: unbounded or not knowable)."""
    try:
        parser: Any = importlib.import_module("re._parser")
        _low, high = parser.parse(regex).getwidth()
    except Exception:
        return None
    return None if high >= parser.MAXREPEAT else int(high)


def parse(src: Source, raw: Any, pages: Mapping[str, Any]) -> MaskingSettings:
    """`masking:` into frozen settings; every problem reported with its key path."""
    where = ("masking",)
    if raw is None:
        return MaskingSettings()
    if not isinstance(raw, dict):
        src.problem(where, "must be a mapping with patterns and pages")
        return MaskingSettings()
    known = {"json_max_bytes", "max_decompressed_bytes", "window_chars", "patterns", "pages"}
    for key in raw:
        if key not in known:
            src.problem((*where, key), f"unknown key (expected one of: {', '.join(sorted(known))})")
    sizes = {k: _positive(src, (*where, k), raw[k]) for k in
             ("json_max_bytes", "max_decompressed_bytes", "window_chars") if k in raw}
    window = sizes.get("window_chars") or MaskingSettings.window_chars
    patterns = _patterns(src, raw.get("patterns") or {}, window)
    base = MaskingSettings(patterns=patterns)
    masks = _pages(src, raw.get("pages") or {}, pages, base)
    return MaskingSettings(**{k: v for k, v in sizes.items() if v}, patterns=patterns,
                           pages=masks)


def _positive(src: Source, where: tuple[str, ...], value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        src.problem(where, f"must be a whole number of at least 1, got {value!r}")
        return None
    return value


def _patterns(src: Source, raw: Any, window: int) -> dict[str, MaskPattern]:
    where = ("masking", "patterns")
    if not isinstance(raw, dict):
        src.problem(where, "must be a mapping of name to {regex, keep_last}")
        return {}
    out = {}
    for name, spec in raw.items():
        spec = {"regex": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, dict) or not isinstance(spec.get("regex"), str):
            src.problem((*where, name), "must be a regex, or a mapping with regex and keep_last")
            continue
        found = _pattern(src, (*where, name), name, spec, window)
        if found is not None:
            out[name] = found
    return out


def _pattern(src: Source, where: tuple[str, ...], name: str, spec: dict[str, Any],
             window: int) -> MaskPattern | None:
    unknown = sorted(set(spec) - {"regex", "keep_last"})
    if unknown:
        src.problem((*where, unknown[0]), "unknown key (expected regex, keep_last)")
    keep = spec.get("keep_last", 0)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        src.problem((*where, "keep_last"), f"must be 0 or more, got {keep!r}")
        return None
    try:
        compiled = re.compile(spec["regex"])
    except re.error as exc:
        src.problem((*where, "regex"), f"not a valid regular expression: {exc}")
        return None
    if compiled.match(""):
        src.problem((*where, "regex"), "matches the empty text; it would mask nothing")
        return None
    width = max_width(spec["regex"])
    if width is None or width > window:
        src.problem((*where, "regex"), f"a match may be longer than masking.window_chars "
                    f"({window}); bound every repetition, e.g. {{1,40}} instead of +")
        return None
    return MaskPattern(name, spec["regex"], keep)


def _pages(src: Source, raw: Any, pages: Mapping[str, Any],
           base: MaskingSettings) -> dict[str, PageMask]:
    where = ("masking", "pages")
    if not isinstance(raw, dict):
        src.problem(where, "must be a mapping of page name to {text, json}")
        return {}
    out = {}
    for name, spec in raw.items():
        if name != "*" and name not in pages:
            src.problem((*where, name), f'unknown page "{name}"')
            continue
        if not isinstance(spec, dict) or set(spec) - {"text", "json"}:
            src.problem((*where, name), "must be a mapping with text (a list of pattern "
                        "names) and json (a mapping of path to field name)")
            continue
        out[name] = PageMask(_text(src, (*where, name, "text"), spec.get("text") or [], base),
                             _json(src, (*where, name, "json"), spec.get("json") or {}, base))
    return out


def _text(src: Source, where: tuple[str, ...], raw: Any,
          base: MaskingSettings) -> tuple[str, ...]:
    if not isinstance(raw, list):
        src.problem(where, "must be a list of pattern names")
        return ()
    names = []
    for i, name in enumerate(raw):
        if base.pattern(str(name)) is None:
            src.problem((*where, i), f'unknown pattern "{name}" (built in: card, email, '
                        "phone; others under masking.patterns)")
        else:
            names.append(str(name))
    return tuple(names)


def _json(src: Source, where: tuple[str, ...], raw: Any,
          base: MaskingSettings) -> dict[str, str]:
    if not isinstance(raw, dict):
        src.problem(where, "must be a mapping of JSON path (a.b, items[].c, *) to field name")
        return {}
    out = {}
    for path, name in raw.items():
        if not all(SEGMENT.match(part) for part in str(path).split(".")):
            src.problem((*where, path), "a path is dot-separated keys; `*` is any key or "
                        "element, `key[]` every element of a list")
        elif not isinstance(name, str) or not name:
            src.problem((*where, path), "the field name (what unmask and the audit call it)")
        else:
            out[str(path)] = name
    return out
