"""Masking through the real proxy: HTML and JSON of every size and encoding reach an
impersonating CSR masked, or are refused whole; unmask by policy; the audit counts."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.gateway import audit_lines, impersonate, login
from tests.support.masking import (
    CARD,
    CARD_MASKED,
    EMAIL,
    EMAIL_MASKED,
    PHONE,
    PHONE_MASKED,
    ROW_MASKED,
    RULES,
    TICKET,
    TICKET_MASKED,
    masked_page,
    page,
)


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
    banner = body.index("<style>#csrgw-banner")  # the banner's own style, then the banner
    assert body[:banner] + body[body.index("</body>"):] == masked_page(rows)
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
    from gateway.directory.service import DirectoryService  # only this test changes users
    from tests.support.gateway import gw_of

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
