"""Masking what a CSR need not see: the patterns, split anywhere, JSON paths, charsets and
the configuration's checks (no server; tests/integration/test_masking_proxy.py runs it
through the gateway)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from gateway.config.load import settings_from_text
from gateway.config.yamlsrc import ConfigError
from gateway.core.maskrules import MaskingSettings, MaskPattern, PageMask
from gateway.pipeline.masking import TextMasker, luhn, mask_text, text_patterns
from tests.support.gateway import ROOT
from tests.support.masking import (
    CARD,
    CARD_MASKED,
    EMAIL,
    EMAIL_MASKED,
    PHONE,
    PHONE_MASKED,
    ROW,
    RULES,
    TICKET,
    TICKET_MASKED,
    masked_page,
    page,
)


def every(settings: MaskingSettings = RULES) -> list[MaskPattern]:
    rule = settings.pages["order_confirmation"]
    return text_patterns(settings, rule, set(rule.fields()))


@pytest.mark.parametrize(("text", "expected"), [
    (CARD, CARD_MASKED), ("4111111111111111", "************1111"),
    ("4111-1111-1111-1112", "4111-1111-1111-1112"), (EMAIL, EMAIL_MASKED),
    ("x.y+z@mail.example.co", "x***@mail.example.co"), (PHONE, PHONE_MASKED),
    ("(030) 1234 5678", "(***) **** **78"), ("555-123-4567", "***-***-**67"),
    ("order 100000123", "order 100000123"), ("2026-12-03 14:05", "2026-12-03 14:05"),
    (TICKET, TICKET_MASKED), ("", ""),
], ids=["card-spaced", "card-plain", "card-not-luhn", "email", "email-subdomain", "phone-intl",
        "phone-parens", "phone-dashed", "order-number", "date", "operator-regex", "empty"])
def test_patterns(text: str, expected: str) -> None:
    """Each built-in and an operator's pattern masks what it should and leaves look-alikes."""
    assert mask_text(every(), text, Counter()) == expected


@pytest.mark.parametrize("window", [40, 64, 512], ids=lambda w: f"window-{w}")
def test_a_value_split_anywhere_is_masked(window: int) -> None:
    """Fed in two pieces cut at every position, the page comes out masked the same."""
    text, want = page(3), masked_page(3)
    for at in range(len(text)):
        counts: Counter[str] = Counter()
        masker = TextMasker(every(), window, counts)
        out = masker.feed(text[:at]) + masker.feed(text[at:]) + masker.finish()
        assert out == want, at
        assert counts == {"card": 3, "email": 3, "phone": 3, "ticket": 3}


def test_memory_is_bounded() -> None:
    """However long the text, at most the window (and its context) is held back."""
    masker = TextMasker(every(), 512, Counter())
    for _ in range(2000):
        masker.feed(ROW)
        assert len(masker.pending) <= 512 + len(ROW) and len(masker.context) <= 64


@pytest.mark.parametrize("digits", ["4111111111111111", "5500005555555559", "378282246310005"],
                         ids=["visa", "mastercard", "amex"])
def test_luhn(digits: str) -> None:
    """Real test card numbers pass the check; one changed digit fails it."""
    assert luhn(digits) and not luhn(digits[:-1] + str((int(digits[-1]) + 1) % 10))


# ---- configuration -------------------------------------------------------------------

BASE = (ROOT / "config" / "gateway.yaml").read_text()


@pytest.mark.parametrize(("section", "where"), [
    ("masking:\n  patterns:\n    bad: '(unclosed'\n", "masking.patterns.bad.regex"),
    ("masking:\n  patterns:\n    long: '\\d+'\n", "masking.patterns.long.regex"),
    ("masking:\n  patterns:\n    empty: 'x?'\n", "masking.patterns.empty.regex"),
    ("masking:\n  pages:\n    nosuch: {text: [card]}\n", "masking.pages.nosuch"),
    ("masking:\n  pages:\n    cart: {text: [iban]}\n", "masking.pages.cart.text[0]"),
    ("masking:\n  pages:\n    cart: {json: {'a..b': email}}\n", "masking.pages.cart.json.a..b"),
    ("masking:\n  json_max_bytes: 0\n", "masking.json_max_bytes"),
    ("masking:\n  colour: red\n", "masking.colour"),
    ("masking:\n  window_chars: 100\n  pages:\n    cart: {text: [email]}\n",
     "masking.window_chars"),
], ids=["bad-regex", "unbounded-regex", "matches-empty", "unknown-page", "unknown-pattern",
        "bad-path", "bad-size", "unknown-key", "window-too-small"])
def test_bad_configuration_names_file_line_and_key(section: str, where: str) -> None:
    """Every masking mistake is a configuration error with file:line and the key path."""
    text = BASE + "\n" + section
    with pytest.raises(ConfigError) as caught:
        settings_from_text(text, "gateway.yaml", base=ROOT / "config")
    (problem,) = caught.value.problems
    assert problem.path == where and problem.file == "gateway.yaml"
    assert problem.line > BASE.count("\n")


def test_good_configuration() -> None:
    """A valid section becomes frozen rules; `*` covers every page not named."""
    text = BASE + """
masking:
  json_max_bytes: 1000
  patterns:
    ticket: {regex: 'TK-\\d{4,8}', keep_last: 2}
  pages:
    reports: {text: [card, ticket]}
    "*": {text: [email]}
"""
    masking = settings_from_text(text, base=ROOT / "config").masking
    assert masking.json_max_bytes == 1000 and masking.patterns["ticket"].keep_last == 2
    assert masking.for_page("reports") == PageMask(text=("card", "ticket"))
    assert masking.for_page("cart") == PageMask(text=("email",))


@pytest.mark.parametrize(("path", "document", "expected"), [
    ("a.b", {"a": {"b": "x1"}}, {"a": {"b": "***"}}),
    ("items[].c", {"items": [{"c": "p"}, {"c": "q"}, {"d": "r"}]},
     {"items": [{"c": "***"}, {"c": "***"}, {"d": "r"}]}),
    ("*.c", [{"c": "p"}, {"c": None}], [{"c": "***"}, {"c": None}]),
    ("*", {"k": "v", "n": 12}, {"k": "***", "n": "***"}),
    ("a.b", {"a": ["b"]}, {"a": ["b"]}),
    ("a", {"a": {"deep": "v"}}, {"a": "***"}),
], ids=["nested-key", "every-element", "top-level-list", "every-key", "absent", "object"])
def test_json_paths(path: str, document: Any, expected: Any) -> None:
    """Paths name keys, `*` any key or element, `key[]` every element; null and absent
    places stay as they are; an object or list named whole becomes `***`."""
    from gateway.pipeline.masking import JsonMasker

    rule = PageMask(json={path: "secret"})
    counts: Counter[str] = Counter()
    masker = JsonMasker(MaskingSettings(), rule, {"secret"}, [], counts)
    assert masker.mask(document) == expected


@pytest.mark.parametrize(("charset", "text"), [
    ("iso-8859-1", f"Grüße {CARD} und {EMAIL}"),
    ("utf-8", f"Grüße {CARD} ✓ {EMAIL}"),
    ("windows-1252", f"€ {CARD}"),
], ids=["latin-1", "utf-8", "cp1252"])
def test_text_keeps_its_charset(charset: str, text: str) -> None:
    """A page in another charset is masked in that charset, every other byte kept."""
    from gateway.pipeline.maskstream import MaskPlan, TextBody

    rule = RULES.pages["order_confirmation"]
    body = TextBody(MaskPlan(RULES, rule, set(rule.fields())), None, charset)
    raw = text.encode(charset)
    out = b"".join(body.feed(raw[i:i + 3]) for i in range(0, len(raw), 3)) + body.finish()
    assert out == text.replace(CARD, CARD_MASKED).replace(EMAIL, EMAIL_MASKED).encode(charset)
