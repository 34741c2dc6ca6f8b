"""Masking what a CSR need not see: text and JSON, any size, split anywhere, opened or refused."""

from __future__ import annotations

import gzip
import json
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config.load import settings_from_text
from gateway.config.yamlsrc import ConfigError
from gateway.core.maskrules import MaskingSettings, MaskPattern, PageMask
from gateway.pipeline.masking import TextMasker, luhn, mask_text, text_patterns
from tests.conftest import ROOT, audit_lines, impersonate, login

CARD, CARD_MASKED = "4111 1111 1111 1111", "**** **** **** 1111"
EMAIL, EMAIL_MASKED = "alice@acme.example", "a***@acme.example"
PHONE, PHONE_MASKED = "+1 555 123 4567", "+* *** *** **67"
TICKET, TICKET_MASKED = "TK-123456", "**-****56"
# look alike, are not: a Luhn-invalid card, an order number, a date and time
DECOYS = "4111 1111 1111 1112 order 100000123 on 2026-12-03 14:05"
ROW = f"<tr><td>{CARD}</td><td>{EMAIL}</td><td>{PHONE}</td><td>{TICKET}</td>" \
      f"<td>{DECOYS}</td></tr>\n"
ROW_MASKED = ROW.replace(CARD, CARD_MASKED).replace(EMAIL, EMAIL_MASKED) \
    .replace(PHONE, PHONE_MASKED).replace(TICKET, TICKET_MASKED)
PATTERNS = {"ticket": MaskPattern("ticket", r"\bTK-\d{4,8}\b", keep_last=2)}
RULES = MaskingSettings(patterns=PATTERNS, pages={
    "order_confirmation": PageMask(text=("card", "email", "phone", "ticket"),
                                   json={"orders[].card": "card", "orders[].buyer.email": "email",
                                         "orders[].note": "secret_note"}),
})


def page(rows: int) -> str:
    return "<html><body><table>\n" + ROW * rows + "</table></body></html>"


def masked_page(rows: int) -> str:
    return "<html><body><table>\n" + ROW_MASKED * rows + "</table></body></html>"


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


# ---- through the gateway -------------------------------------------------------------

def packed(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    return body


def document(rows: int) -> dict[str, Any]:
    return {"orders": [{"id": i, "card": CARD, "note": "call after 5",
                        "buyer": {"email": EMAIL, "phone": PHONE}, "ref": TICKET}
                       for i in range(rows)]}


async def _serve(request: web.Request) -> web.StreamResponse:
    """As the query says: rows, kind (html, json, pdf), encoding, chunk size, length."""
    q = request.query
    rows, kind, encoding = int(q.get("rows", "1")), q.get("kind", "html"), q.get("enc", "")
    if kind == "json":
        body, ctype = json.dumps(document(rows)).encode(), "application/json"
    elif kind == "pdf":
        body, ctype = b"%PDF-1.4 " + CARD.encode(), "application/pdf"
    else:
        body, ctype = page(rows).encode(), "text/html; charset=utf-8"
    body = packed(body, encoding) if encoding != "br" else b"\x0b\x02\x80garbage"
    headers = {"Content-Type": ctype, "ETag": '"v1"'}
    if encoding:
        headers["Content-Encoding"] = encoding
    request.app[SEEN].append(dict(request.headers))
    if q.get("length") == "1":
        return web.Response(body=body, headers=headers)
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    step = int(q.get("chunk", "4096"))
    for at in range(0, len(body), step):
        await response.write(body[at:at + step])
    await response.write_eof()
    return response


SEEN = web.AppKey("seen", list)


@pytest.fixture
async def shop() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    app = web.Application()
    app[SEEN] = []
    app.router.add_route("*", "/{tail:.*}", _serve)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), app[SEEN]
    await server.close()


async def acting_client(make_gateway: Any, url: str, csr: str = "csr-carol") -> Any:
    client = await make_gateway(url, masking=dict(RULES.__dict__))
    await login(client, csr)
    assert await impersonate(client, "buyer-alice") == 303
    return client


def request_line(client: Any, path: str) -> dict[str, Any]:
    return [r for r in audit_lines(client) if r["event"] == "request" and r["path"] == path][-1]


@pytest.mark.parametrize(("rows", "enc", "chunk", "length"), [
    (1, "", 4096, "1"), (1, "", 7, ""), (3, "gzip", 4096, "1"), (40, "", 13, ""),
    (20_000, "", 65_536, ""), (20_000, "", 4099, ""), (20_000, "gzip", 8192, ""),
    (5000, "deflate", 1000, ""),
], ids=["tiny-identity", "tiny-7-byte-chunks", "small-gzip", "chunks-of-13",
        "multi-mb-chunked", "multi-mb-odd-chunks", "multi-mb-gzip", "deflate"])
async def test_html_is_masked_through_the_proxy(make_gateway, shop, rows, enc, chunk,
                                                length) -> None:
    """HTML of every size and encoding reaches the CSR masked (banner still in), decoded,
    without the shop's length or ETag; the audit line counts what was masked."""
    url, seen = shop
    client = await acting_client(make_gateway, url)
    path = f"/orders/1?rows={rows}&enc={enc}&chunk={chunk}&length={length}"
    resp = await client.get(path, headers={"Accept-Encoding": "gzip, br"},
                            auto_decompress=False)
    body = (await resp.read()).decode()
    assert resp.status == 200 and "Content-Encoding" not in resp.headers
    assert "ETag" not in resp.headers
    assert CARD not in body and EMAIL not in body and PHONE not in body
    assert body.count(ROW_MASKED) == rows and "Logged In As" in body
    assert body.replace(body[body.index('<div id="csrgw-banner"'):body.index("</body>")], "") \
        == masked_page(rows)
    assert seen[-1].get("Accept-Encoding") == "identity"
    line = request_line(client, path)
    assert line["masked"] == {"card": rows, "email": rows, "phone": rows, "ticket": rows}


@pytest.mark.parametrize(("rows", "enc", "length"), [
    (1, "", "1"), (2, "gzip", ""), (5000, "", ""), (20_000, "gzip", ""),
], ids=["tiny", "gzip-chunked", "large", "multi-mb-gzip"])
async def test_json_is_masked_by_path_and_pattern(make_gateway, shop, rows, enc,
                                                  length) -> None:
    """JSON fields by path (whatever their text) and patterns in every string are masked;
    the length is the masked body's."""
    url, _seen = shop
    client = await acting_client(make_gateway, url)
    path = f"/api/orders?kind=json&rows={rows}&enc={enc}&length={length}"
    resp = await client.get(path)
    raw = await resp.read()
    assert resp.status == 200 and int(resp.headers["Content-Length"]) == len(raw)
    data = json.loads(raw)
    first = data["orders"][0]
    assert first["card"] == CARD_MASKED and first["buyer"]["email"] == EMAIL_MASKED
    assert first["note"] == "***" and first["buyer"]["phone"] == PHONE_MASKED
    assert first["ref"] == TICKET_MASKED and len(data["orders"]) == rows
    assert request_line(client, path)["masked"] == {
        "card": rows, "email": rows, "phone": rows, "ticket": rows, "secret_note": rows}


@pytest.mark.parametrize(("query", "status", "reason"), [
    ("kind=json&rows=5000", 502, "masking_body_too_large"),
    ("kind=html&enc=br", 502, "masking_unsupported"),
    ("kind=pdf", 502, "masking_unsupported"),
], ids=["json-over-limit", "brotli", "binary-type"])
async def test_what_cannot_be_masked_is_refused(make_gateway, shop, query, status,
                                                reason) -> None:
    """Never half-masked: too large JSON, an encoding or type we cannot open: a clean 502."""
    url, _seen = shop
    masking = dict(RULES.__dict__) | {"json_max_bytes": 100_000}
    client = await make_gateway(url, masking=masking)
    await login(client, "csr-carol")
    await impersonate(client, "buyer-alice")
    path = f"/orders/1?{query}"
    resp = await client.get(path, headers={"Accept": "application/json"})
    body = await resp.text()
    assert resp.status == status and json.loads(body)["error"] == reason
    assert CARD not in body and "Card" not in body
    assert request_line(client, path)["reason"] == reason


async def test_the_buyer_sees_everything(make_gateway, shop) -> None:
    """Masking is for a CSR acting for a buyer: the buyer's own view is untouched."""
    url, _seen = shop
    client = await make_gateway(url, masking=dict(RULES.__dict__))
    await login(client, "buyer-alice")
    resp = await client.get("/orders/1?rows=2")
    assert (await resp.text()) == page(2)
    assert "masked" not in request_line(client, "/orders/1?rows=2")


async def test_unmask_by_policy(make_gateway, shop) -> None:
    """A CSR with the feature the policy's `unmask` reads sees e-mail and phone, never the
    card; the audit line names what was let through."""
    url, _seen = shop
    client = await make_gateway(url, masking=dict(RULES.__dict__))
    from gateway.directory.service import DirectoryService
    from tests.conftest import gw_of

    directory = gw_of(client).directory
    carol = directory.snapshot.user("csr-carol")
    assert carol is not None
    await DirectoryService(directory).update_user(
        "csr-carol", {"features": [*carol.features, "see_contact_details"]})
    await login(client, "csr-carol")
    assert await impersonate(client, "buyer-alice") == 303
    body = await (await client.get("/orders/1?rows=2")).text()
    assert EMAIL in body and PHONE in body and CARD not in body
    line = request_line(client, "/orders/1?rows=2")
    assert line["unmasked"] == ["email", "phone"]
    assert line["masked"] == {"card": 2, "ticket": 2}


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


async def test_forward_auth_refuses_a_masked_page(make_gateway, shop) -> None:
    """Forward-auth cannot mask what the proxy in front sends back: a masked page for an
    impersonating CSR is 403 masking_needs_proxy there; unmasked pages still pass."""
    url, _seen = shop
    client = await acting_client(make_gateway, url)
    refused = await client.get("/_gateway/authz", headers={
        "X-Original-URI": "/orders/1", "X-Original-Method": "GET"})
    assert refused.status == 403
    assert refused.headers["X-Gateway-Reason"] == "masking_needs_proxy"
    passed = await client.get("/_gateway/authz", headers={
        "X-Original-URI": "/cart", "X-Original-Method": "GET"})
    assert passed.status == 200
