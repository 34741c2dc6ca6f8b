"""docs/forward-auth.md shows deploy/nginx/forward-auth.conf as it is (the file the e2e test
and the bench run), and the file has every placeholder its readers fill in."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "nginx" / "forward-auth.conf"
DOC = ROOT / "docs" / "forward-auth.md"


def _nginx_blocks(text: str) -> list[str]:
    blocks, rest = [], text
    while "```nginx\n" in rest:
        rest = rest.split("```nginx\n", 1)[1]
        block, rest = rest.split("```\n", 1)
        blocks.append(block)
    return blocks


def test_the_doc_shows_the_file() -> None:
    assert CONF.read_text() in _nginx_blocks(DOC.read_text())


def test_the_placeholders_are_there() -> None:
    text = CONF.read_text()
    for mark in ("@GATEWAY@", "@SHOP@", "@LISTEN@", "# @AUTHZ_EXTRA@"):
        assert text.count(mark) == 1, mark
    # every request is asked about: nothing in nginx answers for the gateway
    assert "proxy_cache" not in text and "auth_request /_gateway/authz;" in text
    assert "keepalive" in text and 'proxy_set_header Connection "";' in text
