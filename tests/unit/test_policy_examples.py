"""The worked examples of docs/policy.md hold: R4 (CSR and Administrator), R10 (a feature
toggle in a rule), and the Reports walkthrough (table fails, fix, table passes, explain)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config.load import load_settings
from gateway.core.domain import Actor
from gateway.policylab.explain import explain
from gateway.policylab.harness import Harness
from tests.support.gateway import ROOT

R10_RULES = '''
# Reports for staff with the action_manager toggle, whatever their group.
feature_grant("action_manager", "reports", "view");

page_access(false, actor, action, page) if
    name = page.name and
    feature in actor.features and
    feature_grant(feature, name, action) and
    cut;
'''


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", target)
    return target


def _bench(policies: Path | None = None) -> Harness:
    return Harness(load_settings(ROOT / "config" / "gateway.yaml"), policies)


def test_r4_csr_who_is_administrator_gets_only_an_acting_csrs_rights() -> None:
    """while acting, a CSR who is also Administrator is decided exactly like a plain CSR
    on every page and admin area; alone, the extra group does add rights."""
    bench = _bench()
    carol = bench.user("csr-carol")
    both = dataclasses.replace(carol, groups=("CSR", "Administrator"))
    alice = bench.user("buyer-alice")
    for name, page in bench.settings.pages.items():
        for action in ("view", "submit", "order", "edit", "assign"):
            plain = bench.engine.page(Actor(carol, alice), action, page).allowed
            assert bench.engine.page(Actor(both, alice), action, page).allowed == plain, name
    assert not bench.engine.admin(Actor(both, alice), "read", "users").allowed
    assert bench.engine.admin(Actor(both), "read", "users").allowed
    assert bench.engine.page(Actor(both), "view", bench.settings.pages["shop_admin"]).allowed


@pytest.mark.parametrize(("persona", "expect"), [
    ("csr-carol", "allow"), ("csr-dave", "deny"), ("buyer-alice", "deny")],
    ids=["toggle-on", "toggle-off", "buyer"])
def test_r10_feature_toggle_example(tmp_path: Path, persona: str, expect: str) -> None:
    """with the docs' rule and without the CSR group's own Reports grant, Reports
    follows the action_manager toggle (csr-carol has it, csr-dave does not)."""
    policies = _copy(tmp_path)
    pages = policies / "pages.polar"
    text = pages.read_text()
    text = text.replace('grant("CSR", "reports", "view");\n', "")
    text = text.replace('grant("Buyer", "reports", "view");\n', "")
    pages.write_text(text + R10_RULES)
    bench = _bench(policies)
    assert bench.decide(persona, None, "GET", "/reports").decision == expect
    if expect == "allow":
        said = explain(bench, persona, None, "GET", "/reports")
        assert "do not account for this decision" in said
        assert "feature_grant(feature, name, action)" in said


def test_reports_walkthrough(tmp_path: Path, capsys) -> None:
    """Write the row, see it fail, remove the grant, see it pass, explain says why."""
    policies = _copy(tmp_path)
    table = policies / "tests" / "reports.yaml"
    table.write_text('- {persona: csr-carol, request: "GET /reports", expect: deny}\n'
                     '- {persona: csr-carol, as: buyer-alice, request: "GET /reports", '
                     'expect: deny}\n')
    argv = ["policy", "test", "--policies", str(policies), str(table)]
    assert main(argv) == 1
    assert "expected deny, got allow (ok) [page reports, action view]" in \
        capsys.readouterr().out
    pages = policies / "pages.polar"
    pages.write_text(pages.read_text().replace('grant("CSR", "reports", "view");\n', ""))
    assert main(argv) == 0
    assert main(["policy", "explain", "--policies", str(policies), "--user", "csr-carol",
                 "GET", "/reports"]) == 0
    out = capsys.readouterr().out
    assert "DENY (policy_denied)" in out and 'grant(group, "reports", "view")' in out
