"""The decision tables hold through a real gateway, not only offline."""

from __future__ import annotations

import itertools

from gateway.policylab.tables import Case, load_table
from tests.support.gateway import ROOT, audit_lines, impersonate, login, whoami

TABLES = sorted((ROOT / "policies" / "tests").glob("*.yaml"))
CASES = [case for path in TABLES for case in load_table(path) if not case.ask]


async def test_tables_hold_through_a_real_gateway(gateway) -> None:
    """The same rows, as logged-in personas through the real pipeline: the audit line of each
    request (or the refused impersonation) carries the expected decision and reason."""
    rows = sorted(_e2e_cases(), key=lambda c: (c.persona, c.acting_as or ""))
    wrong = []
    for (persona, acting), group in itertools.groupby(rows, lambda c: (c.persona,
                                                                          c.acting_as)):
        gateway.session.cookie_jar.clear()
        await login(gateway, persona)
        started = await impersonate(gateway, acting) if acting else None
        for case in group:
            got = await _decided(gateway, case, started)
            if got != (case.expect, case.reason or got[1]):
                wrong.append(f"{case.where} {case.label}: got {got}")
    assert wrong == []


def _e2e_cases() -> list[Case]:
    """Rows a real gateway can replay without forms: all but POSTs to gateway pages, and
    `unmask` and read-only rows (test_masking_proxy.py and test_impersonation_mode.py drive
    those through the proxy)."""
    return [c for c in CASES if not (c.method != "GET" and c.path.startswith("/_gateway/"))
            and c.unmask is None and c.mode == "write"]


async def _decided(gateway, case: Case, started: int | None) -> tuple[str, str]:
    if started is not None and started != 303:
        denied = [r for r in audit_lines(gateway) if r["event"] == "impersonation_denied"]
        return "deny", denied[-1]["reason"]
    token = (await whoami(gateway))["csrf_token"]
    await gateway.request(case.method, case.path, headers={"X-CSRF-Token": token},
                          allow_redirects=False)
    line = audit_lines(gateway)[-1]
    return line["decision"], line["reason"]
