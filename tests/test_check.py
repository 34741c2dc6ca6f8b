"""`csr-gateway check`: loads configuration and policy, then lints, every finding at once."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import main
from tests.conftest import ROOT

Edit = Callable[[dict[str, Any], dict[str, Any], Path], None]


def _setup(tmp_path: Path, edit: Edit) -> Path:
    """A copy of the shipped config, seed and policies, changed by `edit`."""
    config = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text())
    seed = yaml.safe_load((ROOT / "config" / "directory.yaml").read_text())
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    edit(config, seed, policies)
    (tmp_path / "directory.yaml").write_text(yaml.safe_dump(seed))
    config["directory"]["seed"] = str(tmp_path / "directory.yaml")
    config["policies_dir"] = str(policies)
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "gateway.yaml"


def _append(policies: Path, text: str) -> None:
    with (policies / "pages.polar").open("a") as fh:
        fh.write("\n" + text + "\n")


def _replace(policies: Path, file: str, old: str, new: str) -> None:
    path = policies / file
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))


def _csr_admin(config: dict, seed: dict, policies: Path) -> None:
    next(u for u in seed["users"] if u["username"] == "csr-carol")["groups"] = [
        "CSR", "Administrator"]


def _unmentioned_page(config: dict, seed: dict, policies: Path) -> None:
    config["pages"]["billing"] = {"title": "Billing"}
    config["routes"].append({"path": "/billing", "page": "billing"})


def _unrouted_page(config: dict, seed: dict, policies: Path) -> None:
    config["pages"]["orphan"] = {"title": "Orphan"}
    _append(policies, 'grant("Buyer", "orphan", "view");')


def _dead_rule(config: dict, seed: dict, policies: Path) -> None:
    _append(policies, "vip_page(name) if name = \"reports\";")


def _dead_grants(config: dict, seed: dict, policies: Path) -> None:
    _append(policies, 'grant("CSR", "billing", "view");\ngrant("Ghosts", "reports", "view");\n'
                      'grant("CSR", "reports", "export");')


def _print(config: dict, seed: dict, policies: Path) -> None:
    _replace(policies, "pages.polar", "    name = page.name and\n    group in actor.groups",
             "    name = page.name and print(name) and\n    group in actor.groups")


def _reasons_disagree(config: dict, seed: dict, policies: Path) -> None:
    _replace(policies, "impersonation.polar",
             '(why = "not_assigned" and not buyer.company in actor.assigned_companies)',
             '(why = "not_assigned" and not buyer.company in actor.assigned_companies '
             'and 1 = 2)')


LINTS: dict[str, tuple[Edit, list[str]]] = {
    "csr-is-admin": (_csr_admin, ['user "csr-carol" is both CSR and Administrator: more rights']),
    "route-to-unmentioned-page": (_unmentioned_page, [
        'routes[25] /billing -> page "billing": no policy rule mentions this page']),
    "page-without-route": (_unrouted_page, ["pages.orphan: no route reaches this page"]),
    "rule-never-used": (_dead_rule, ["pages.polar:", "rule vip_page is never used"]),
    "grants-never-apply": (_dead_grants, [
        'grant("CSR", "billing", "view") is never used: no page "billing"',
        'grant("Ghosts", "reports", "view") is never used: no group "Ghosts"',
        'grant("CSR", "reports", "export") is never used: no route of page "reports" asks '
        'for "export"']),
    "print-in-policy": (_print, ["print() writes to the gateway's stdout"]),
    "refusal-reasons-disagree": (_reasons_disagree, [
        "csr-carol as buyer-ivan: allow_impersonation fails but impersonation_refused names "
        "no reason"]),
}


def test_shipped_configuration_is_clean(capsys) -> None:
    """The shipped configuration, seed and policy check with no warning."""
    assert main(["check", "--config", str(ROOT / "config" / "gateway.yaml")]) == 0
    out = capsys.readouterr().out
    assert "0 warning(s)" in out and "warning:" not in out


@pytest.mark.parametrize("name", list(LINTS))
def test_lint_warns(tmp_path: Path, capsys, name: str) -> None:
    """Each risky change is reported as a warning; the configuration still checks (exit 0)."""
    edit, words = LINTS[name]
    assert main(["check", "--config", str(_setup(tmp_path, edit))]) == 0
    out = capsys.readouterr().out
    for word in words:
        assert word in out, out


def test_broken_policy_fails_with_file_and_line(tmp_path: Path, capsys) -> None:
    """A policy that does not load fails the check, naming file and line."""
    config = _setup(tmp_path, lambda c, s, p: _append(p, 'grant("CSR", "reports" "view");'))
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "pages.polar:" in err and "did not expect to find the token" in err


def test_broken_config_lists_every_problem(tmp_path: Path, capsys) -> None:
    """Configuration errors are all reported, each with its key path."""
    def edit(config: dict, seed: dict, policies: Path) -> None:
        config["routes"][2]["page"] = "nowhere"
        config["routes"][3]["page"] = "elsewhere"

    assert main(["check", "--config", str(_setup(tmp_path, edit))]) == 1
    err = capsys.readouterr().err
    assert "routes[2].page" in err and "routes[3].page" in err
