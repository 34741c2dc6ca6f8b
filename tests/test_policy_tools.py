"""Tools for policy authors: explain, the access matrix, shadow replay."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.cli import main
from tests.conftest import ROOT, audit_lines, gw_of, login


@pytest.mark.parametrize(("argv", "words"), [
    (["--user", "csr-carol", "--as", "buyer-alice", "GET", "/reports"],
     ['ALLOW', 'grant("CSR", "reports", "view") matched via group CSR',
      'grant("Buyer", "reports", "view") matched via group Buyer',
      "allow_impersonation holds"]),
    (["--user", "csr-carol", "--as", "buyer-ivan", "POST", "/checkout"],
     ["DENY (not_assigned)", 'impersonation_refused gives "not_assigned"',
      '(why = "not_assigned" and not buyer.company in actor.assigned_companies)']),
    (["--user", "csr-carol", "--as", "buyer-alice", "GET", "/account/password"],
     ["DENY (sensitive_page)", "page change_password is sensitive",
      "never while impersonating (R18)"]),
    (["--user", "buyer-alice", "GET", "/admin"], ["DENY (policy_denied)", "denied by default"]),
    (["--user", "buyer-alice", "GET", "/a%2fb"], ["DENY (bad_path"]),
], ids=["allowed-impersonating", "not-assigned", "sensitive", "no-grant", "bad-path"])
def test_explain_names_the_deciding_rules(capsys, argv: list[str], words: list[str]) -> None:
    """`policy explain` prints the route, page, decision and the facts behind it."""
    assert main(["policy", "explain", *argv]) == 0
    out = capsys.readouterr().out
    for word in words:
        assert word in out, out


def test_matrix_json_has_groups_pages_admin_areas_and_acting_rows(capsys) -> None:
    """The matrix shows R3's CSR pages, R13's assigners, the admin area, and CSR as Buyer."""
    assert main(["policy", "matrix", "--format", "json"]) == 0
    import orjson

    data = orjson.loads(capsys.readouterr().out)
    csr, rows = data["rows"]["CSR"], data["rows"]
    assert csr["reports"] == "view" and csr["select_user"] == "view+submit"
    assert csr["shop_admin"] == "-" and csr["change_password"] == "-" and csr["cart"] == "-"
    assert rows["Sales Admin"]["order_assignment"] == "assign"
    assert rows["Administrator"]["order_assignment"] == "assign" and csr["order_assignment"] == "-"
    assert rows["Sales Admin"]["admin:sessions"] == "read"
    assert rows["Administrator"]["admin:users"] == "read+manage"
    assert [k for k in rows if " as " in k] == ["CSR as Buyer"]
    acting = rows["CSR as Buyer"]
    assert acting["checkout"] == "view+order+quote" and acting["change_password"] == "-"
    assert acting["admin:users"] == "-" and acting["my_account"] == "view"


def test_matrix_table_and_html(capsys) -> None:
    """The terminal table lists pages down and groups across; HTML is a table too."""
    assert main(["policy", "matrix"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["Administrator", "CSR", "Buyer"]
    assert lines[0].endswith("CSR as Buyer")
    reports = next(line for line in lines if line.startswith("reports "))
    assert reports.split() == ["reports", "view", "view", "view", "view", "view", "view"]
    assert main(["policy", "matrix", "--format", "html"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<table class='matrix'>") and "<th scope='col'>CSR as Buyer</th>" in out


async def test_replay_reports_changed_decisions(gateway, tmp_path: Path, capsys) -> None:
    """Recorded traffic re-decided by a candidate policy: every changed decision is listed."""
    await login(gateway, "csr-carol")
    await gateway.get("/reports")
    audit_lines(gateway)
    candidate = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", candidate)
    pages = candidate / "pages.polar"
    pages.write_text(pages.read_text().replace('grant("CSR", "reports", "view");', ""))
    audit = gw_of(gateway).settings.audit.path
    assert main(["policy", "test", "--replay", audit]) == 0
    assert main(["policy", "test", "--replay", audit, "--policies", str(candidate)]) == 1
    out = capsys.readouterr().out
    assert "CHANGED" in out and "csr-carol GET /reports: allow/ok -> deny/policy_denied" in out
