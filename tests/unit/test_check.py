"""`csr-gateway check`: loads configuration and policy, then lints, every finding at once."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli.main import main
from tests.support.gateway import ROOT

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
             '(why = "not_assigned" and not actor.is_assigned(buyer.company))',
             '(why = "not_assigned" and not actor.is_assigned(buyer.company) '
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


def _not_a_dir(tmp_path: Path) -> Path:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    return blocker


RUNTIME: dict[str, tuple[Callable[[dict[str, Any], Path], None], str]] = {
    "port-too-big": (lambda c, t: c["listen"].update(port=99999),
                     "listen.port: must be a port number from 1 to 65535, got 99999"),
    "port-zero": (lambda c, t: c["listen"].update(port=0),
                  "listen.port: must be a port number from 1 to 65535, got 0"),
    "upstream-without-scheme": (lambda c, t: c["upstream"].update(url="127.0.0.1:8081"),
                                "upstream.url: must be an http(s) URL with a host"),
    "upstream-ftp": (lambda c, t: c["upstream"].update(url="ftp://shop.example"),
                     "upstream.url: must be an http(s) URL with a host"),
    "public-url-without-host": (lambda c, t: c.update(public_url="https://"),
                                "public_url: must be an http(s) URL with a host"),
    "audit-under-a-file": (
        lambda c, t: c["audit"].update(path=str(_not_a_dir(t) / "audit.jsonl")),
        "audit.path: "),
    "audit-read-only-mount": (lambda c, t: c["audit"].update(path="/sys/csrgw/audit.jsonl"),
                              "audit.path: cannot create /sys/csrgw/audit.jsonl: "
                              "/sys/csrgw is not creatable"),
    "sqlite-under-a-file": (
        lambda c, t: c["directory"].update(
            url=f"sqlite+aiosqlite:///{_not_a_dir(t) / 'd.sqlite3'}"),
        "directory.url: "),
    "state-dir-read-only": (lambda c, t: c.update(state_dir="/sys/csrgw-state"),
                            "state_dir: /sys/csrgw-state is not creatable"),
    "policies-missing": (lambda c, t: c.update(policies_dir=str(t / "no-policies")),
                         "policies_dir: "),
    "key-not-pem": (lambda c, t: ((t / "keys").mkdir(), (t / "keys" / "k.pem").write_text("x"),
                                  c["assertion"].update(keys_dir=str(t / "keys"))),
                    "assertion.keys_dir: "),
    "unset-variable": (lambda c, t: c["upstream"].update(url="${CSRGW_TEST_NEVER_SET}"),
                       "upstream.url: environment variable CSRGW_TEST_NEVER_SET is not set"),
    "unreadable-secret-file": (
        lambda c, t: c["assertion"].update(algorithm="HS256",
                                           hs256_secret_file=str(t / "missing-secret")),
        "assertion.hs256_secret_file: cannot read"),
}


@pytest.mark.parametrize("name", list(RUNTIME))
def test_check_proves_what_run_needs(tmp_path: Path, capsys, name: str) -> None:
    """What would fail at run time fails the check as one `file:line key: message` line."""
    import re

    edit, expected = RUNTIME[name]
    policies_kept: dict[str, Any] = {}

    def change(config: dict, seed: dict, policies: Path) -> None:
        policies_kept["dir"] = policies
        edit(config, tmp_path)

    config = _setup(tmp_path, change)
    if name == "policies-missing":  # _setup pins policies_dir: point it elsewhere again
        data = yaml.safe_load(config.read_text())
        data["policies_dir"] = str(tmp_path / "no-policies")
        config.write_text(yaml.safe_dump(data))
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    line = next((ln for ln in err.splitlines() if expected in ln), None)
    assert line is not None, err
    assert re.match(rf"{re.escape(str(config))}:\d+ ", line), line
    assert "Traceback" not in err


def test_check_print_masks_secrets(tmp_path: Path, capsys) -> None:
    """`check --print` shows the effective configuration with every secret masked."""
    def edit(config: dict, seed: dict, policies: Path) -> None:
        config["assertion"].update(algorithm="HS256", hs256_secret="s3cret-" * 6)
        config["sessions"]["redis_url"] = "redis://:redispw@127.0.0.1:6379/0"
        config["impersonation"]["notify_webhook"] = "https://hooks:hookpw@h.example/x?token=tk1"

    config = _setup(tmp_path, edit)
    data = yaml.safe_load(config.read_text())
    data["directory"]["url"] = f"postgresql+asyncpg://gw:dbpw@127.0.0.1/gw_{tmp_path.name}"
    config.write_text(yaml.safe_dump(data))
    assert main(["check", "--config", str(config), "--print"]) == 0
    out = capsys.readouterr().out
    shown = yaml.safe_load(out[:out.rindex("\n", 0, out.rindex(": ok ("))])
    for secret in ("s3cret-", "redispw", "dbpw", "hookpw", "tk1"):
        assert secret not in out
    assert shown["assertion"]["hs256_secret"] == "********"
    assert shown["sessions"]["redis_url"] == "redis://:********@127.0.0.1:6379/0"
    assert shown["directory"]["url"].startswith("postgresql+asyncpg://gw:********@127.0.0.1/")
    assert shown["impersonation"]["notify_webhook"] == (
        "https://hooks:********@h.example/x?********")
    assert shown["upstream"]["url"] == data["upstream"]["url"]
