"""Reads the `masking:` section: every bad regex, page or path named with file:line key."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from typing import Any

from gateway.config.yamlsrc import Source
from gateway.core.maskrules import MaskingSettings, MaskPattern, PageMask

SEGMENT = re.compile(r"^(?:\*|[^.\[\]*]+)(?:\[\])?$")


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
    _check_window(src, base, masks, window)
    return MaskingSettings(**{k: v for k, v in sizes.items() if v}, patterns=patterns,
                           pages=masks)


def _check_window(src: Source, base: MaskingSettings, masks: Mapping[str, PageMask],
                  window: int) -> None:
    """A built-in pattern in use must fit the window too (the operator's own are checked
    where they are defined)."""
    used = {name for mask in masks.values() for name in mask.text if name not in base.patterns}
    for name in sorted(used):
        pattern = base.pattern(name)
        width = max_width(pattern.regex) if pattern is not None else None
        if width is not None and width > window:
            src.problem(("masking", "window_chars"), f"the built-in {name} pattern needs at "
                        f"least {width}, got {window}")


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
