"""Tools for policy authors: explain, the access matrix, shadow replay."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from gateway.cli.main import main
from tests.support.gateway import ROOT, audit_lines, gw_of, impersonate, login
from tests.support.processes import write_config


@pytest.mark.parametrize(("argv", "words"), [
    (["--user", "csr-carol", "--as", "buyer-alice", "GET", "/reports"],
     ['ALLOW', 'grant("CSR", "reports", "view") matched via group CSR',
      'grant("Buyer", "reports", "view") matched via group Buyer',
      "allow_impersonation holds"]),
    (["--user", "csr-carol", "--as", "buyer-ivan", "POST", "/checkout"],
     ["DENY (not_assigned)", 'impersonation_refused gives "not_assigned"',
      '(why = "not_assigned" and not actor.is_assigned(buyer.company))']),
    (["--user", "csr-carol", "--as", "buyer-alice", "GET", "/account/password"],
     ["DENY (sensitive_page)", "page change_password is sensitive",
      "never while a CSR acts for a buyer"]),
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
    """The terminal table lists pages down and groups across; HTML is a whole page whose
    rows are page titles and whose cells say allowed or not in words and a symbol."""
    assert main(["policy", "matrix"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["Administrator", "CSR", "Buyer"]
    assert lines[0].endswith("CSR as Buyer")
    reports = next(line for line in lines if line.startswith("reports "))
    assert reports.split() == ["reports", "view", "view", "view", "view", "view", "view"]
    assert main(["policy", "matrix", "--format", "html"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<!doctype html>") and '<th scope="col">CSR as Buyer</th>' in out
    assert "<style>" in out and "table.matrix" in out and ">Change Password</th>" in out
    assert "✓" in out and "✕" in out and "not allowed" in out
    assert main(["policy", "matrix", "--format", "html", "--group", "CSR"]) == 0
    out = capsys.readouterr().out
    assert '<th scope="col">CSR as Buyer</th>' in out and '<th scope="col">Buyer</th>' not in out
    assert main(["policy", "matrix", "--format", "html", "--group", "Nobody"]) == 2
    assert "no such group: Nobody" in capsys.readouterr().err


async def _record_traffic(gateway) -> str:
    """A CSR's day: Reports, Select User, then acting for buyer-alice on her cart and an
    admin page; a buyer on her password page. Returns the audit file."""
    await login(gateway, "csr-carol")
    for path in ("/reports", "/_gateway/select-user", "/account/password"):
        await gateway.get(path)
    assert await impersonate(gateway, "buyer-alice") == 303
    for path in ("/cart", "/reports", "/_gateway/admin/users"):
        await gateway.get(path)
    gateway.session.cookie_jar.clear()
    await login(gateway, "buyer-alice")
    await gateway.get("/account/password")
    audit_lines(gateway)
    return str(gw_of(gateway).settings.audit.path)


def _candidate(tmp_path: Path, old: str, new: str) -> Path:
    candidate = tmp_path / "candidate"
    shutil.copytree(ROOT / "policies", candidate, dirs_exist_ok=True)
    pages = candidate / "pages.polar"
    assert old in pages.read_text()
    pages.write_text(pages.read_text().replace(old, new))
    return candidate


async def test_replay_with_the_same_policy_changes_nothing(gateway, capsys) -> None:
    """Recorded traffic re-decided by the policy that decided it: nothing changes, exit 0."""
    audit = await _record_traffic(gateway)
    assert main(["policy", "test", "--replay", audit]) == 0
    out = capsys.readouterr().out
    assert "CHANGED" not in out and "REASON" not in out
    assert "7 replayed" in out and "0 decision(s) would change" in out


@pytest.mark.parametrize(("old", "new", "lines"), [
    ('grant("CSR", "reports", "view");', "",
     ["csr-carol GET /reports: allow/ok -> deny/policy_denied",
      "csr-carol as buyer-alice GET /reports: allow/ok -> deny/policy_denied",
      "2 decision(s) would change"]),
    ('acting_grant("CSR", "cart", "*");', "",
     ["csr-carol as buyer-alice GET /cart: allow/ok -> deny/policy_denied",
      "1 decision(s) would change"]),
    ('grant("Buyer", "change_password", "*");', "",
     ["buyer-alice GET /account/password: allow/ok -> deny/policy_denied",
      "1 decision(s) would change"]),
], ids=["csr-loses-reports", "csr-loses-cart-while-acting", "buyer-loses-password-page"])
async def test_replay_reports_changed_decisions(gateway, tmp_path: Path, capsys, old: str,
                                               new: str, lines: list[str]) -> None:
    """A candidate policy: every recorded decision it would change is listed; exit 1."""
    audit = await _record_traffic(gateway)
    candidate = _candidate(tmp_path, old, new)
    assert main(["policy", "test", "--replay", audit, "--policies", str(candidate)]) == 1
    out = capsys.readouterr().out
    for line in lines:
        assert line in out, out


async def test_replay_can_use_the_live_directory(gateway, tmp_path: Path, capsys) -> None:
    """With --live-directory the replay reads the gateway's database: a CSR moved out of
    the CSR group there changes the recorded decisions, the seed file would not."""
    from gateway.directory.service import DirectoryService

    audit = await _record_traffic(gateway)
    gw = gw_of(gateway)
    await DirectoryService(gw.directory).update_user("csr-carol", {"groups": ["Buyer"]})
    config = write_config(tmp_path, "http://127.0.0.1:9", 8080)
    argv = ["policy", "test", "--replay", audit, "--config", str(config)]
    assert await asyncio.to_thread(main, argv) == 0  # main runs its own event loop
    assert await asyncio.to_thread(main, [*argv, "--live-directory"]) == 1
    out = capsys.readouterr().out
    assert 'csr-carol GET /_gateway/select-user: allow/ok -> deny/policy_denied' in out
    assert "csr-carol as buyer-alice GET /cart: allow/ok -> deny/not_impersonator" in out


def test_matrix_is_remembered_per_policy_snapshot() -> None:
    """The admin Groups page asks for the matrix often: once per policy snapshot is enough."""
    from gateway.config.load import load_settings
    from gateway.policylab.harness import Harness
    from gateway.policylab.matrix import access_matrix

    bench = Harness(load_settings(ROOT / "config" / "gateway.yaml"))
    first = access_matrix(bench)
    assert access_matrix(bench) is first
    bench.engine.reload()
    assert access_matrix(bench) is not first and access_matrix(bench) == first
