"""Audit reason codes are a closed, documented set: every code the code can write is listed."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.core.reasons import REASONS

ROOT = Path(__file__).resolve().parent.parent.parent
RAISES = re.compile(
    r'(?:reason=|Forbidden\(|BadRequest\(|ServiceUnavailable\(|Unauthenticated\(|NotFound\('
    r'|MethodNotAllowed\(|UpstreamUnavailable\(|UpstreamTimeout\(|PayloadTooLarge\('
    r'|ImpersonationEnded\(|TooManyRequests\(|ctx\.deny\()"([a-z_]+)"')
POLAR = re.compile(r'why = "([a-z_]+)"')


def _codes() -> set[str]:
    found = set()
    for path in (ROOT / "gateway").rglob("*.py"):
        found |= set(RAISES.findall(path.read_text(encoding="utf-8")))
    for path in (ROOT / "policies").glob("*.polar"):
        found |= set(POLAR.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_reason_in_code_is_registered() -> None:
    """A reason written anywhere in gateway/ or policies/ is in gateway.core.reasons.REASONS."""
    assert _codes() - set(REASONS) == set()


def test_reasons_are_snake_case() -> None:
    """Reason codes are stable snake_case identifiers."""
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", code) for code in REASONS)


def test_every_event_in_code_is_documented() -> None:
    """Every audit event the code can write is in EVENTS and in docs/audit.md."""
    from gateway.audit import EVENTS

    emitted = set()
    for path in (ROOT / "gateway").rglob("*.py"):
        emitted |= set(re.findall(r'\.emit\(\s*"([a-z_]+)"', path.read_text(encoding="utf-8")))
    emitted |= {"impersonation_start", "impersonation_stop", "impersonation_end"}
    docs = (ROOT / "docs" / "audit.md").read_text(encoding="utf-8")
    assert emitted - set(EVENTS) == set()
    assert [e for e in EVENTS if f"`{e}`" not in docs] == []
