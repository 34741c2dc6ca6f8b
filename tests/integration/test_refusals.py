"""Humane refusals: one sentence naming the page, what to do, the code small, a way back."""

from __future__ import annotations

import re

import pytest

from gateway.core.reasons import ACTING_SENTENCES, REASONS, SENTENCES, sentence
from tests.support.gateway import impersonate, login

# allowed, or written only to the audit log / answered with the raiser's own field-by-field words
NOT_SHOWN = {"ok", "public_page", "policy_invalid", "notify_failed", "validation_failed",
             "bad_request", "impersonation_ended", "upstream_aborted",  # aborted: mid-stream
             "client_disconnected",  # the client has gone: nobody reads it
             "masked",  # a field the policy leaves masked: a decision, never a refusal
             "approval_pending",  # 202 and the pending page, which says it in its own words
             "limit_exceeded"}  # the limit event's reason; a blocked start has its own sentence


@pytest.mark.parametrize("reason", sorted(set(REASONS) - NOT_SHOWN))
def test_every_refusal_a_person_can_meet_has_a_sentence(reason) -> None:
    """Each reason has one sentence: what happened, then (after ';') what to do, in words."""
    for buyer in (None, "Alice Anders"):
        text = sentence(reason, "", page="Change Password", buyer=buyer)
        assert text.endswith(".") and text.count(". ") == 0, text
        assert "; " in text, f"{reason}: no 'what to do' half: {text}"
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), f"a code in {text!r}"
        assert not re.search(r"\bR\d+\b", text)
        assert text[0].isupper()


def test_the_sentence_table_holds_only_known_reasons() -> None:
    """SENTENCES is keyed by the closed set of audit reasons, nothing invented."""
    assert set(SENTENCES) - set(REASONS) == set()
    assert set(ACTING_SENTENCES) <= set(SENTENCES)


def test_unlisted_reason_keeps_the_raisers_words() -> None:
    """A bad filter's message names the field: kept as given."""
    assert sentence("bad_request", "sort: one of newest, oldest") == "sort: one of newest, oldest"


async def _acting(gateway) -> None:
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice") == 303


@pytest.mark.parametrize(("referer", "back"), [
    ("{base}/cart?x=1", "/cart?x=1"),
    ("https://evil.example/cart", "/"),
    ("{base}/account/password", "/"),
    ("//evil.example/x", "/"),
    ("not a url at all", "/"),
], ids=["same-origin", "other-site", "the-refused-page", "protocol-relative", "garbage"])
async def test_sensitive_page_while_acting_says_so_and_links_back(gateway, referer, back) -> None:
    """Change Password while acting: the sentence names the page by its title, the reason
    code is there small, and Go back leads to a same-site Referer only."""
    await _acting(gateway)
    base = str(gateway.make_url("")).rstrip("/")
    resp = await gateway.get("/account/password", headers={
        "Referer": referer.format(base=base), "Accept": "text/html"})
    text = await resp.text()
    assert resp.status == 403
    assert "<h1>Change Password is not available while acting for a buyer; only Alice " \
           "Anders can use it, from their own login.</h1>" in text
    assert "<small>For support: reason <code>sensitive_page</code>" in text
    assert f'href="{back.replace("&", "&amp;")}" rel="nofollow">Go back</a>' in text


async def test_json_refusal_carries_the_same_sentence(gateway) -> None:
    """An API client gets the page's sentence as `message`, the code as `error`."""
    await _acting(gateway)
    resp = await gateway.get("/account/password", headers={"Accept": "application/json"})
    body = await resp.json()
    assert resp.status == 403 and body["error"] == "sensitive_page"
    assert body["message"].startswith("Change Password is not available while acting for a buyer")


@pytest.mark.parametrize(("user", "path", "words"), [
    ("buyer-alice", "/_gateway/admin/users",
     "Administration: Users is not available to you; ask an administrator if you need it."),
    ("buyer-alice", "/no/such/page",
     "There is no page at this address; check the link or go back to the storefront."),
    ("csr-carol", "/cart", "Cart is not available to you; ask an administrator"),
], ids=["admin-area", "no-route", "page-by-title"])
async def test_refusals_name_the_page_in_words(gateway, user, path, words) -> None:
    """Refusals read as sentences with the page's title, never a bare code."""
    await login(gateway, user)
    resp = await gateway.get(path, headers={"Accept": "text/html"})
    text = await resp.text()
    assert resp.status in (403, 404) and words in text
    assert "Reason: <code>" not in text
