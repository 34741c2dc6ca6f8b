"""The language of the gateway's own pages: chosen per request, catalogues in the package.

The person's own setting (account page) wins, else the browser's `Accept-Language`, else
English. The choice lives in a context variable set at the start of every request (and
again once the session names the person), so templates, refusal sentences and words built
in code all read the same language without passing it around.
"""

from __future__ import annotations

import gettext as stdlib_gettext
from contextvars import ContextVar
from functools import cache, lru_cache
from pathlib import Path

import jinja2
from babel.core import negotiate_locale

from gateway.core.assets import LOCALE

LOCALE_DIR = LOCALE
DOMAIN = "messages"
DEFAULT = "en"
# Languages with a complete catalogue, and how each names itself on the account page.
LANGUAGES: dict[str, str] = {"en": "English", "de": "Deutsch"}
_ACCEPT_LIMIT = 512  # a longer header is cut: nobody prefers more languages than that

# (the person's setting or "", the request's Accept-Language or "")
_CHOICE: ContextVar[tuple[str, str]] = ContextVar("csrgw_language", default=("", ""))


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined; translated where it is shown."""
    return message


def from_request(accept_language: str | None) -> None:
    """The start of a request: only the browser's preference is known yet."""
    _CHOICE.set(("", (accept_language or "")[:_ACCEPT_LIMIT]))


def prefer(setting: str) -> None:
    """The session named the person: their own setting (if any) overrides the browser's."""
    _CHOICE.set((setting, _CHOICE.get()[1]))


def language() -> str:
    setting, accept = _CHOICE.get()
    return setting if setting in LANGUAGES else negotiate(accept)


@lru_cache(maxsize=256)
def negotiate(accept_language: str) -> str:
    """The best of our languages for an `Accept-Language` header (q-values honoured)."""
    wanted: list[str] = []
    for tag in preferred(accept_language):  # "de-AT" is served by "de" before the next choice
        wanted += [tag, tag.split("-")[0]]
    found = (negotiate_locale(wanted, list(LANGUAGES), sep="-") or DEFAULT).lower()
    return found if found in LANGUAGES else DEFAULT  # Babel answers in the header's case


def preferred(accept_language: str) -> list[str]:
    """The header's languages, most wanted first; `q=0` means "not this one"."""
    ranked: list[tuple[float, int, str]] = []
    for i, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, i, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


@cache
def translations(lang: str) -> stdlib_gettext.NullTranslations:
    """The compiled catalogue of a language; English is the source text itself."""
    if lang == DEFAULT or lang not in LANGUAGES:
        return stdlib_gettext.NullTranslations()
    return stdlib_gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang])


def gettext(message: str) -> str:
    return translations(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(language()).ngettext(singular, plural, n)


_ = gettext


def environment(templates: Path, **options: object) -> jinja2.Environment:
    """A template environment whose `_()`, `{% trans %}` and `language()` follow the
    request's language."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), autoescape=True,
                             undefined=jinja2.StrictUndefined,
                             extensions=["jinja2.ext.i18n"], **options)  # type: ignore[arg-type]
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["language"] = language
    return env
