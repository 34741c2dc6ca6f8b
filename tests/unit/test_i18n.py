"""The gateway's languages: every visible word marked, English and German complete, the
compiled catalogue current, the language chosen per request."""

from __future__ import annotations

import contextvars
import gettext
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from gateway.core import i18n
from tests.support.gateway import ROOT

TEMPLATES = ROOT / "gateway" / "templates"
BABEL_CFG = ROOT / "babel.cfg"
FIX = ("mark it with _() / {% trans %} (or N_() in Python), then run the commands in "
       "docs/translating.md")


def _source_messages() -> dict[str | tuple[str, ...], list[str]]:
    """Every message in the gateway's code and templates, as `pybabel extract -F babel.cfg`
    finds it: msgid (a tuple for plurals) -> where ("file:line")."""
    with BABEL_CFG.open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg, str(BABEL_CFG))
    found: dict[str | tuple[str, ...], list[str]] = {}
    for filename, line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords={"N_": None, "_": None,
                                                          "gettext": None,
                                                          "ngettext": (1, 2)}):
        key = message if isinstance(message, str) else tuple(message)
        found.setdefault(key, []).append(f"{filename}:{line}")
    return found


SOURCE = _source_messages()
CATALOGUES = {lang: ROOT / "gateway" / "locale" / lang / "LC_MESSAGES" / "messages.po"
              for lang in i18n.LANGUAGES if lang != i18n.DEFAULT}


def _catalogue(lang: str):  # type: ignore[no-untyped-def]
    with CATALOGUES[lang].open("rb") as f:
        return read_po(f, locale=lang)


def test_source_has_messages_and_skips_the_demo_shop() -> None:
    """Extraction sees templates and Python, never gateway/demo/ (the shop is not ours)."""
    places = [p for where in SOURCE.values() for p in where]
    assert any(p.startswith("gateway/templates/") for p in places)
    assert any(p.startswith("gateway/core/reasons.py") for p in places)
    assert not any(p.startswith("gateway/demo/") for p in places)


@pytest.mark.parametrize("lang", sorted(CATALOGUES))
def test_catalogue_translates_every_message(lang: str) -> None:
    """Every extracted message has a translation, none fuzzy: a new or changed string
    fails here with its text and file until it is translated."""
    catalogue = _catalogue(lang)
    problems = []
    for msgid, where in SOURCE.items():
        entry = catalogue.get(msgid if isinstance(msgid, str) else msgid[0])
        strings = [] if entry is None else (
            list(entry.string) if isinstance(entry.string, tuple) else [entry.string])
        if entry is None or not all(strings):
            problems.append(f"untranslated in {lang}: {msgid!r} ({', '.join(where)})")
        elif entry.fuzzy:
            problems.append(f"fuzzy in {lang}: {msgid!r} ({', '.join(where)})")
    assert not problems, "\n".join(problems) + f"\n-> translate in {CATALOGUES[lang]}"


@pytest.mark.parametrize("lang", sorted(CATALOGUES))
def test_catalogue_holds_no_messages_the_source_lost(lang: str) -> None:
    """Entries whose text left the source are removed (`pybabel update` does it)."""
    ids = {m if isinstance(m, str) else m[0] for m in SOURCE}
    stale = [m.id for m in _catalogue(lang) if m.id and
             (m.id if isinstance(m.id, str) else m.id[0]) not in ids]
    assert stale == [], f"no longer in the source: {stale}; run pybabel update"


PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|\{[a-z_]+\}|</?[a-z]+[^>]*>")


@pytest.mark.parametrize("lang", sorted(CATALOGUES))
def test_translations_keep_placeholders_and_markup(lang: str) -> None:
    """A translation keeps every `%(name)s`, `{name}` and tag of its English text."""
    bad = []
    for m in _catalogue(lang):
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        want = sorted(PLACEHOLDER.findall(ids[-1]))
        bad += [f"{m.id!r} -> {s!r}" for s in strings if sorted(PLACEHOLDER.findall(s)) != want]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("lang", sorted(CATALOGUES))
def test_compiled_catalogue_is_current(lang: str) -> None:
    """The shipped .mo says what the .po says (`pybabel compile -d gateway/locale`)."""
    po = _catalogue(lang)
    with CATALOGUES[lang].with_suffix(".mo").open("rb") as f:
        mo = gettext.GNUTranslations(f)
    stale = []
    for m in po:
        if not m.id:
            continue
        if isinstance(m.id, tuple):
            got = tuple(mo.ngettext(m.id[0], m.id[1], n) for n in (1, 2))
            if got != tuple(m.string):
                stale.append(m.id)
        elif mo.gettext(m.id) != m.string:
            stale.append(m.id)
    assert not stale, f"{lang} .mo is older than its .po: {stale[:5]}; run pybabel compile"


class _Words(HTMLParser):
    """Text and spoken attributes a person reads, left after the marked strings are gone."""

    SPOKEN = ("title", "aria-label", "placeholder", "alt")

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        self.found += [v for k, v in attrs if k in self.SPOKEN and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.found.append(data)


# Not words to translate: the product's name, symbols, and a format's name.
NOT_WORDS = re.compile(r"csr-gateway|JSON|[✓✕⚠←→·—…:;,.()/\s-]")
TEMPLATE_FILES = sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html"))


def unmarked_words(source: str) -> list[str]:
    """What a template shows that no `_()` or `{% trans %}` covers."""
    text = re.sub(r"\{#.*?#\}", "", source, flags=re.S)
    text = re.sub(r"\{%-?\s*trans\b.*?\{%-?\s*endtrans\s*-?%\}", "", text, flags=re.S)
    text = re.sub(r"\{\{.*?\}\}", "", text, flags=re.S)
    text = re.sub(r"\{%.*?%\}", "", text, flags=re.S)
    parser = _Words()
    parser.feed(text)
    return [w.strip() for w in parser.found if NOT_WORDS.sub("", w)]


@pytest.mark.parametrize("template", TEMPLATE_FILES)
def test_template_shows_no_unmarked_words(template: str) -> None:
    """Every word a template shows goes through the catalogue (new pages too)."""
    words = unmarked_words((TEMPLATES / template).read_text())
    assert words == [], f"gateway/templates/{template}: unmarked text {words}; {FIX}"


@pytest.mark.parametrize(("snippet", "words"), [
    ("<p>Hello</p>", ["Hello"]),
    ('<input placeholder="e.g. a ticket">', ["e.g. a ticket"]),
    ("<p>{{ _('Hello') }}</p>", []),
    ("<p>{% trans %}Hi {{ x }}{% endtrans %}</p>", []),
    ("<style>body { color: red }</style><span>csr-gateway · ✓</span>", []),
], ids=["text", "attribute", "marked", "trans-block", "style-and-symbols"])
def test_unmarked_word_finder(snippet: str, words: list[str]) -> None:
    """The finder the template test relies on catches text and spoken attributes."""
    assert unmarked_words(snippet) == words


@pytest.mark.parametrize(("header", "lang"), [
    ("de-DE,de;q=0.9,en;q=0.8", "de"), ("de-AT", "de"), ("en-GB,de;q=0.5", "en"),
    ("fr, de-CH;q=0.5, en;q=0.4", "de"), ("fr", "en"), ("", "en"), ("*", "en"),
    ("de;q=0, en", "en"), ("de;q=nonsense", "en"), ("DE", "de"),
], ids=["german-first", "region-only", "english-first", "second-choice", "unknown",
        "empty", "star", "refused-by-q0", "bad-q", "upper-case"])
def test_accept_language_negotiation(header: str, lang: str) -> None:
    """The browser's list is honoured by quality; anything we lack falls back to English."""
    def choose() -> str:
        i18n.from_request(header)
        return i18n.language()
    assert contextvars.copy_context().run(choose) == lang


@pytest.mark.parametrize(("setting", "header", "lang"), [
    ("de", "en", "de"), ("en", "de", "en"), ("", "de", "de"), ("xx", "de", "de"),
], ids=["setting-over-browser", "english-setting", "no-setting", "unknown-setting"])
def test_the_persons_setting_wins(setting: str, header: str, lang: str) -> None:
    """The account page's choice beats Accept-Language; an unknown value is ignored."""
    def choose() -> str:
        i18n.from_request(header)
        i18n.prefer(setting)
        return i18n.language()
    assert contextvars.copy_context().run(choose) == lang


def test_every_language_has_its_compiled_catalogue_in_the_package() -> None:
    """Each non-English language named on the account page ships its .po and .mo."""
    for lang in CATALOGUES:
        assert Path(i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "messages.mo").is_file()
        assert i18n.translations(lang).gettext("Logout Buyer") != "Logout Buyer"
