"""What masking is configured: named patterns and, per page, what to mask (frozen)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# Built in, each bounded so a match always fits the streaming window. Cards are also
# Luhn-checked and phones need 8-15 digits (masking.py): order numbers and dates stay.
CARD = r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])"
EMAIL = (r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,4}"
         r"[A-Za-z]{2,24}(?![\w-])")
PHONE = (r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
         r"|\(\d{2,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w])")
BUILTIN: dict[str, tuple[str, int]] = {"card": (CARD, 4), "email": (EMAIL, 0),
                                       "phone": (PHONE, 2)}


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
