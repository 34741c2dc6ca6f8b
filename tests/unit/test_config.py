"""Configuration loading: every problem reported at once with file, line and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.load import ConfigError, load_settings, settings_from_text
from tests.support.configs import GOOD


def test_shipped_config_loads() -> None:
    """config/gateway.yaml is valid and every route points at a declared page."""
    settings = load_settings(Path(__file__).parent.parent.parent / "config" / "gateway.yaml")
    assert settings.routes and all(r.page in settings.pages for r in settings.routes)
    assert settings.sessions.cookie_name.startswith("csrgw_")


@pytest.mark.parametrize(("snippet", "expected"), [
    ("bogus: 1\n", "<f>:5 bogus: unknown key"),
    ("upstream:\n  connect_timeout: fast\n", "<f>:6 upstream.connect_timeout: expected a number"),
    ("sessions: {store: mongo}\n", "<f>:5 sessions.store: 'mongo' is not one of memory, redis"),
    ("audit: {fail_closed: maybe}\n", "<f>:5 audit.fail_closed: expected true or false"),
    ("listen: {port: 80.5}\n", "<f>:5 listen.port: expected a whole number"),
    ("trusted_proxies: [not-an-ip]\n", "<f>:5 trusted_proxies:"),
], ids=["unknown-key", "bad-number", "bad-choice", "bad-bool", "bad-int", "bad-cidr"])
def test_bad_value_names_file_line_and_key(snippet: str, expected: str) -> None:
    """A bad value is reported as file:line key.path: message."""
    with pytest.raises(ConfigError) as err:
        settings_from_text(GOOD + snippet, "<f>")
    assert any(str(p).startswith(expected) for p in err.value.problems), str(err.value)


@pytest.mark.parametrize(("routes", "expected"), [
    ("  - {path: /x, page: billing}\n", '<f>:5 routes[1].page: unknown page "billing"'),
    ("  - {path: x, page: storefront}\n", "<f>:5 routes[1].path: path must start with"),
    ("  - {path: /a/**/b, page: storefront}\n", '<f>:5 routes[1].path: "**" may only end'),
    ("  - {path: /, page: storefront, methods: [BREW]}\n", "<f>:5 routes[1].path: unknown method"),
    ("  - {path: '/{id}', page: storefront}\n  - {path: /a, page: storefront}\n",
     "<f>:6 routes[2].path: '/a' overlaps routes[1]"),
    ("  - {page: storefront}\n", "<f>:5 routes[1]: missing required key 'path'"),
], ids=["unknown-page", "relative-path", "inner-rest", "bad-method", "overlap", "no-path"])
def test_bad_routes_are_refused(routes: str, expected: str) -> None:
    """Routes are compiled at load: unknown pages, bad patterns and overlaps are errors."""
    with pytest.raises(ConfigError) as err:
        settings_from_text(GOOD + routes, "<f>")
    assert any(str(p).startswith(expected) for p in err.value.problems), str(err.value)


def test_all_problems_reported_at_once() -> None:
    """Three mistakes in one file give three messages, not one."""
    text = GOOD + "bogus: 1\nupstream: {connect_timeout: x}\nsessions: {store: y}\n"
    with pytest.raises(ConfigError) as err:
        settings_from_text(text, "<f>")
    assert len(err.value.problems) == 3


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    """A YAML syntax error names the file and the line yaml found it on."""
    path = tmp_path / "gw.yaml"
    path.write_text("pages:\n  a: {title: x\nroutes: []\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value).startswith(f"{path}:")


def test_check_command_reports_and_fails(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`csr-gateway check` exits non-zero and prints file:line messages."""
    from gateway.cli.main import main

    path = tmp_path / "gw.yaml"
    path.write_text(GOOD + "  - {path: /x, page: nope}\n")
    assert main(["check", "--config", str(path)]) == 1
    assert f"{path}:5 routes[1].page" in capsys.readouterr().err
