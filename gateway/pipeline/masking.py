"""Masking what a CSR need not see: patterns in streamed text, JSON fields by path."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gateway.core.maskrules import MaskingSettings, MaskPattern, PageMask

HIDDEN = "*"
CONTEXT = 64  # characters kept from before the window, for the patterns' lookbehinds


def luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _hide(text: str, keep_last: int) -> str:
    """Letters and digits become `*` except the last `keep_last`; separators stay."""
    out, kept = [], 0
    for char in reversed(text):
        if char.isalnum() and kept >= keep_last:
            char = HIDDEN
        elif char.isalnum():
            kept += 1
        out.append(char)
    return "".join(reversed(out))


def masked_value(pattern: MaskPattern, text: str) -> str | None:
    """The masked form of one match, or None when it is not really that kind of data."""
    digits = "".join(filter(str.isdigit, text)) if pattern.name in ("card", "phone") else ""
    if pattern.name == "card" and not (13 <= len(digits) <= 19 and luhn(digits)):
        return None
    if pattern.name == "phone" and not 8 <= len(digits) <= 15:
        return None
    if pattern.name == "email":
        local, _, domain = text.partition("@")
        return local[:1] + HIDDEN * 3 + "@" + domain
    return _hide(text, pattern.keep_last)


@dataclass
class Span:
    start: int
    end: int
    pattern: MaskPattern
    masked: str


class TextMasker:
    """Masks patterns in text fed piece by piece. Holds back at most `window` characters
    (plus a short context for lookbehinds), so memory stays bounded on any body while a
    value split across chunks is still found: a match that starts `window` characters
    before the end of what arrived is final (no pattern matches more than that)."""

    def __init__(self, patterns: list[MaskPattern], window: int, counts: Counter[str]) -> None:
        self.patterns, self.window, self.counts = patterns, window, counts
        self.context = ""
        self.pending = ""

    def feed(self, text: str) -> str:
        return self._scan(self.pending + text, final=False)

    def finish(self) -> str:
        return self._scan(self.pending, final=True)

    def _scan(self, data: str, final: bool) -> str:
        if not self.patterns:
            self.pending = ""
            return data
        limit = len(data) if final else len(data) - self.window
        if limit <= 0:
            self.pending = data
            return ""
        out, at = [], 0
        for span in self._spans(data, limit):
            out += [data[at:span.start], span.masked]
            at = span.end
            self.counts[span.pattern.name] += 1
        cut = max(limit, at)
        out.append(data[at:cut])
        self.context = (self.context + data[:cut])[-CONTEXT:]
        self.pending = data[cut:]
        return "".join(out)

    def _spans(self, data: str, limit: int) -> list[Span]:
        """Non-overlapping matches that start before `limit`: the earliest wins, and at the
        same position the pattern listed first."""
        text, shift = self.context + data, len(self.context)
        found: list[tuple[int, int, int, MaskPattern, str]] = []
        for rank, pattern in enumerate(self.patterns):
            for match in pattern.compiled.finditer(text, shift):
                start = match.start() - shift
                if start >= limit:
                    break
                masked = masked_value(pattern, match.group())
                if masked is not None:
                    found.append((start, rank, match.end() - shift, pattern, masked))
        chosen, end = [], 0
        for start, _rank, stop, pattern, masked in sorted(found, key=lambda f: f[:2]):
            if start >= end:
                chosen.append(Span(start, stop, pattern, masked))
                end = stop
        return chosen


def mask_text(patterns: list[MaskPattern], text: str, counts: Counter[str]) -> str:
    """One whole string (a JSON value): the streaming masker, fed once."""
    masker = TextMasker(patterns, len(text) + 1, counts)
    return masker.feed(text) + masker.finish()


def _walk(value: Any, path: list[str]) -> Iterator[tuple[Any, Any]]:
    """(container, key) for every place the path names in the document."""
    if not path:
        return
    head, rest = path[0], path[1:]
    every = head.endswith("[]")
    name = head[:-2] if every else head
    if name == "*":
        keys: list[Any] = list(value) if isinstance(value, dict) else \
            list(range(len(value))) if isinstance(value, list) else []
    else:
        keys = [name] if isinstance(value, dict) and name in value else []
    for key in keys:
        if every:
            items = value[key]
            targets = [(items, i) for i in range(len(items))] if isinstance(items, list) else []
        else:
            targets = [(value, key)]
        for container, at in targets:
            if rest:
                yield from _walk(container[at], rest)
            else:
                yield container, at


class JsonMasker:
    """Masks a whole parsed JSON document: fields by path, then text patterns in strings."""

    def __init__(self, settings: MaskingSettings, rule: PageMask, hidden: set[str],
                 text: list[MaskPattern], counts: Counter[str]) -> None:
        self.settings, self.rule, self.hidden = settings, rule, hidden
        self.text, self.counts = text, counts

    def mask(self, document: Any) -> Any:
        for path, name in self.rule.json.items():
            if name not in self.hidden:
                continue
            for container, key in list(_walk(document, path.split("."))):
                value = container[key]
                if value is not None:
                    container[key] = self._field(name, value)
                    self.counts[name] += 1
        return self._strings(document) if self.text else document

    def _field(self, name: str, value: Any) -> str:
        pattern = self.settings.pattern(name)
        if isinstance(value, (dict, list)) or pattern is None:
            return HIDDEN * 3
        text = str(value)
        return masked_value(pattern, text) or _hide(text, 0)

    def _strings(self, value: Any) -> Any:
        if isinstance(value, str):
            return mask_text(self.text, value, self.counts)
        if isinstance(value, list):
            return [self._strings(v) for v in value]
        if isinstance(value, dict):
            return {k: self._strings(v) for k, v in value.items()}
        return value


def hidden_fields(rule: PageMask, unmasked: set[str]) -> set[str]:
    return set(rule.fields()) - unmasked


def text_patterns(settings: MaskingSettings, rule: PageMask, hidden: set[str]
                  ) -> list[MaskPattern]:
    found = [settings.pattern(name) for name in rule.text if name in hidden]
    return [p for p in found if p is not None]
