"""Decision tables: every shipped row holds, offline and through a real gateway; the runner's
output says where and what when a row fails."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config.load import load_settings
from gateway.policylab.harness import Harness
from gateway.policylab.tables import Case, TableError, check_case, load_table
from tests.conftest import ROOT, audit_lines, impersonate, login, whoami

TABLES = sorted((ROOT / "policies" / "tests").glob("*.yaml"))
CASES = [case for path in TABLES for case in load_table(path)]
REQUESTS = [case for case in CASES if not case.ask]  # the rows that decide a request


@pytest.fixture(scope="module")
def bench() -> Harness:
    return Harness(load_settings(ROOT / "config" / "gateway.yaml"))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.file.name}:{c.line} {c.label}" for c in CASES])
def test_row(bench: Harness, case: Case) -> None:
    """Each row of the shipped tables gets its expected decision (and reason)."""
    result = check_case(bench, case)
    assert not isinstance(result, str), f"{case.where} {case.label}: {result}"


def test_tables_cover_every_persona_and_page(bench: Harness) -> None:
    """Every demo persona and every configured page appears, alone and while acting."""
    personas = {c.persona for c in REQUESTS} | {c.acting_as for c in REQUESTS if c.acting_as}
    assert set(bench.directory.users) <= personas
    pages = {bench.question(c.method, c.path).name for c in REQUESTS
             if c.path != "/nowhere"}
    assert set(bench.settings.pages) <= pages
    acting = {bench.question(c.method, c.path).name for c in REQUESTS if c.acting_as}
    assert {p for p, spec in bench.settings.pages.items() if spec.sensitive} <= acting


def _e2e_cases() -> list[Case]:
    """Rows a real gateway can replay without forms: all but POSTs to gateway pages."""
    return [c for c in REQUESTS
            if not (c.method != "GET" and c.path.startswith("/_gateway/"))]


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


async def _decided(gateway, case: Case, started: int | None) -> tuple[str, str]:
    if started is not None and started != 303:
        denied = [r for r in audit_lines(gateway) if r["event"] == "impersonation_denied"]
        return "deny", denied[-1]["reason"]
    token = (await whoami(gateway))["csrf_token"]
    await gateway.request(case.method, case.path, headers={"X-CSRF-Token": token},
                          allow_redirects=False)
    line = audit_lines(gateway)[-1]
    return line["decision"], line["reason"]


def test_cli_runs_the_shipped_tables_green(capsys) -> None:
    """`policy test` without arguments runs policies/tests/*.yaml and exits 0."""
    assert main(["policy", "test"]) == 0
    assert f"{len(CASES)} passed, 0 failed" in capsys.readouterr().out


@pytest.mark.parametrize(("row", "words"), [
    ('{persona: csr-carol, request: "GET /reports", expect: deny}',
     "expected deny, got allow (ok) [page reports, action view]"),
    ('{persona: csr-carol, as: buyer-alice, request: "GET /account/password", expect: deny,'
     ' reason: policy_denied}',
     "expected deny (policy_denied), got deny (sensitive_page) [page change_password"),
    ('{persona: nobody, request: "GET /", expect: allow}', "unknown user 'nobody'"),
    ('{persona: csr-dave, ask: may_approve, requester: csr-carol, as: buyer-bob, expect: yes}',
     "csr-dave may_approve (csr-carol for buyer-bob)\n     expected yes, got no"),
    ('{persona: csr-carol, ask: requires_approval, as: buyer-bob, expect: yes}',
     "csr-carol requires_approval buyer-bob\n     expected yes, got no"),
], ids=["wrong-decision", "wrong-reason", "unknown-persona", "wrong-approver",
        "wrong-requires-approval"])
def test_failing_row_is_readable(tmp_path: Path, capsys, row: str, words: str) -> None:
    """A failing row exits 1 and prints file:line, who and what, expected and got."""
    table = tmp_path / "t.yaml"
    table.write_text(f"# a comment\n- {row}\n")
    assert main(["policy", "test", str(table)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {table}:2" in out and words in out, out


@pytest.mark.parametrize(("text", "words"), [
    ('- {persona: a, request: "GET /", expect: maybe}\n', "t.yaml:1: expect must be allow"),
    ('- {persona: a, request: "/", expect: allow}\n', 't.yaml:1: request must be "METHOD'),
    ('- {persona: a, request: "GET /"}\n- {who: a}\n',
     "t.yaml:1: missing key 'expect'\n"),
    ("persona: a\n", "a YAML list of rows"),
], ids=["bad-expect", "bad-request", "missing-keys", "not-a-list"])
def test_malformed_table_names_file_and_line(tmp_path: Path, text: str, words: str) -> None:
    """A malformed table is refused with every problem's file and line."""
    table = tmp_path / "t.yaml"
    table.write_text(text)
    with pytest.raises(TableError) as err:
        load_table(table)
    assert words in str(err.value)
