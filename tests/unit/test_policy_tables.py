"""Decision tables: every shipped row holds offline; the runner's output says where and what
when a row fails (tests/integration/test_policy_tables_gateway.py replays them live)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config.load import load_settings
from gateway.policylab.harness import Harness
from gateway.policylab.tables import Case, TableError, check_case, load_table
from tests.support.gateway import ROOT

TABLES = sorted((ROOT / "policies" / "tests").glob("*.yaml"))
CASES = [case for path in TABLES for case in load_table(path)]
REQUESTS = [case for case in CASES if not case.ask and case.unmask is None]  # decide a request


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
    ('{persona: csr-carol, as: buyer-alice, mode: read, request: "POST /cart/add", '
     'expect: allow}', "csr-carol as buyer-alice POST /cart/add (read-only)\n     expected "
     "allow, got deny (read_only_impersonation)"),
    ('{persona: csr-carol, as: buyer-alice, unmask: card, expect: allow}',
     "csr-carol as buyer-alice unmask card\n     expected allow, got deny (masked)"),
], ids=["wrong-decision", "wrong-reason", "unknown-persona", "read-only", "unmask"])
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
    ('- {persona: a, request: "GET /", mode: readonly, expect: allow}\n',
     "t.yaml:1: mode must be read or write"),
    ("- {persona: a, as: b, expect: allow}\n", "missing key 'request'"),
], ids=["bad-expect", "bad-request", "missing-keys", "not-a-list", "bad-mode",
        "neither-request-nor-unmask"])
def test_malformed_table_names_file_and_line(tmp_path: Path, text: str, words: str) -> None:
    """A malformed table is refused with every problem's file and line."""
    table = tmp_path / "t.yaml"
    table.write_text(text)
    with pytest.raises(TableError) as err:
        load_table(table)
    assert words in str(err.value)
