"""Configuration for deployment: environment values, paths relative to the file, the
generated reference, and `run` refusing what it cannot or must not serve."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.config.env import apply
from gateway.config.load import ConfigError, load_settings
from gateway.config.yamlsrc import loads
from tests.support.gateway import ROOT
from tests.support.services import free_port

MINIMAL = """\
pages: {storefront: {title: Storefront}}
routes: [{path: /, page: storefront}]
"""


def _write(tmp_path: Path, text: str, name: str = "gateway.yaml") -> Path:
    path = tmp_path / "conf" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(("value", "env", "expected"), [
    ("${GW_T_URL}", {"GW_T_URL": "http://shop:9000"}, "http://shop:9000"),
    ("http://${GW_T_HOST}:81", {"GW_T_HOST": "shop"}, "http://shop:81"),
    ("${GW_T_UNSET:-http://fallback:1}", {}, "http://fallback:1"),
    ("${GW_T_SET:-http://fallback:1}", {"GW_T_SET": "http://set:2"}, "http://set:2"),
], ids=["whole", "inside", "default-used", "default-ignored"])
def test_references_expand(tmp_path: Path, monkeypatch, value: str, env: dict[str, str],
                           expected: str) -> None:
    """`${NAME}` and `${NAME:-default}` take a string value from the environment."""
    for key, val in env.items():
        monkeypatch.setenv(key, val)
    path = _write(tmp_path, MINIMAL + f"upstream: {{url: '{value}'}}\n")
    assert load_settings(path).upstream.url == expected


def test_reference_is_typed_like_the_key(tmp_path: Path, monkeypatch) -> None:
    """A number or boolean key takes its value from the environment as that type."""
    monkeypatch.setenv("GW_T_PORT", "9123")
    monkeypatch.setenv("GW_T_SECURE", "true")
    path = _write(tmp_path, MINIMAL + "listen: {port: '${GW_T_PORT}'}\n"
                  "sessions: {secure_cookie: '${GW_T_SECURE}'}\n"
                  "impersonation: {notify_webhook: '${GW_T_HOOK:-}'}\n")
    settings = load_settings(path)
    assert (settings.port, settings.sessions.secure_cookie) == (9123, True)
    assert settings.impersonation.notify_webhook is None


def test_unset_reference_names_file_line_and_key(tmp_path: Path) -> None:
    """An unset variable without a default is a problem at its file, line and key."""
    path = _write(tmp_path, MINIMAL + "assertion:\n  algorithm: HS256\n"
                  "  hs256_secret: ${GW_T_NEVER_SET_SECRET}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert (f"{path}:5 assertion.hs256_secret: environment variable GW_T_NEVER_SET_SECRET "
            "is not set") in str(caught.value)


@pytest.mark.parametrize(("env", "read", "expected"), [
    ({"CSRGW_UPSTREAM__URL": "http://over:1"}, lambda s: s.upstream.url, "http://over:1"),
    ({"CSRGW_LISTEN__PORT": "9555"}, lambda s: s.port, 9555),
    ({"CSRGW_WORKERS": "3"}, lambda s: s.workers, 3),
    ({"CSRGW_PUBLIC_URL": "https://gw.example"}, lambda s: s.public_url, "https://gw.example"),
    ({"CSRGW_UPSTREAM__SESSION_COOKIES": "[sid, other]"},
     lambda s: s.upstream.session_cookies, ("sid", "other")),
    ({"CSRGW_SMTP_HOST": "mail"}, lambda s: s.port, 8080),
], ids=["section-key", "listen-port", "top-level", "public-url", "list", "not-a-key"])
def test_csrgw_overrides(env: dict[str, str], read, expected) -> None:
    """CSRGW_SECTION__KEY and CSRGW_KEY override the file; other CSRGW_ names are ignored."""
    from gateway.config.load import build

    src = loads(MINIMAL + "upstream: {url: 'http://file:1'}\n")
    apply(src, {"workers", "public_url", "port"}, env)
    src.file = "t.yaml"
    settings = build(src, base=Path("/"))
    assert read(settings) == expected


def test_override_with_unknown_key_is_reported(monkeypatch, tmp_path: Path) -> None:
    """A misspelt override is an unknown key, not silently dropped."""
    monkeypatch.setenv("CSRGW_UPSTREAM__URLL", "http://x:1")
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, MINIMAL))
    assert "upstream.urll: unknown key" in str(caught.value)


def test_secret_from_file(tmp_path: Path) -> None:
    """`hs256_secret_file` reads the secret from a file relative to the configuration."""
    _write(tmp_path, "a" * 40 + "\n", "hs256.secret")
    path = _write(tmp_path, MINIMAL + "assertion: {algorithm: HS256, "
                  "hs256_secret_file: hs256.secret}\n")
    assert load_settings(path).assertion.hs256_secret == "a" * 40


def test_relative_paths_follow_the_file_not_the_cwd(tmp_path: Path, monkeypatch) -> None:
    """Every relative path, given or default, is anchored at the configuration's folder."""
    path = _write(tmp_path, MINIMAL + "directory: {url: 'sqlite+aiosqlite:///../var/d.db', "
                  "seed: seed.yaml}\naudit: {path: ../var/audit.jsonl}\n"
                  "assertion: {keys_dir: keys}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(os.path.relpath(path, elsewhere))
    conf = path.parent
    assert settings.directory.url == f"sqlite+aiosqlite:///{tmp_path / 'var' / 'd.db'}"
    assert settings.directory.seed == conf / "seed.yaml"
    assert settings.audit.path == str(tmp_path / "var" / "audit.jsonl")
    assert settings.assertion.keys_dir == conf / "keys"
    assert settings.state_dir == conf / "var"  # a default, anchored the same way
    assert settings.policies_dir == conf / "policies"


@pytest.mark.parametrize("url", [
    "sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite://", "sqlite+aiosqlite:////abs/d.db",
    "postgresql+asyncpg://u:p@127.0.0.1/db"], ids=["memory", "empty", "absolute", "postgres"])
def test_other_database_urls_are_left_alone(tmp_path: Path, url: str) -> None:
    """Only a relative SQLite file is re-anchored."""
    path = _write(tmp_path, MINIMAL + f"directory: {{url: '{url}'}}\n")
    assert load_settings(path).directory.url == url


def test_directory_commands_use_the_gateways_database(tmp_path: Path, monkeypatch,
                                                       capsys) -> None:
    """`directory import` from another cwd writes the SQLite file `run` reads."""
    from gateway.cli.main import main

    (tmp_path / "app").mkdir()
    init = tmp_path / "app"
    assert main(["init", str(init)]) == 0
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    (other / "more.yaml").write_text(yaml.safe_dump({"users": [{
        "username": "csr-new", "email": "n@example.com", "kind": "staff",
        "groups": ["CSR"]}]}))
    config = os.path.relpath(init / "config" / "gateway.yaml", other)
    assert main(["directory", "import", "--config", config, "more.yaml"]) == 0
    assert (init / "var" / "directory.sqlite3").exists()
    assert not (other / "var").exists()
    capsys.readouterr()
    assert main(["directory", "export", "--config", config]) == 0
    assert "csr-new" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "config_extra", "base"), [
    (["--base-url", "https://given.example/"], "", "https://given.example"),
    ([], "public_url: https://configured.example\n", "https://configured.example"),
    ([], "", "http://127.0.0.1:8080"),
], ids=["flag", "public-url", "listen-address"])
def test_invite_link_uses_the_real_address(tmp_path: Path, capsys, args: list[str],
                                           config_extra: str, base: str) -> None:
    """The invitation link starts with --base-url, else public_url, else host:port."""
    from gateway.cli.main import main

    assert main(["init", str(tmp_path / "app")]) == 0
    config = tmp_path / "app" / "config" / "gateway.yaml"
    config.write_text(config.read_text() + config_extra)
    capsys.readouterr()
    assert main(["directory", "invite", "--config", str(config), "admin", *args]) == 0
    assert capsys.readouterr().out.startswith(f"{base}/_gateway/activate?token=")


def test_configuration_reference_is_current() -> None:
    """docs/configuration.md is what `python -m gateway.config.doc` generates today."""
    from gateway.config.doc import render_reference

    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == render_reference(), (
        "docs/configuration.md is stale: python -m gateway.config.doc --write "
        "docs/configuration.md")


def test_every_key_has_a_meaning() -> None:
    """The generated reference describes every key."""
    from gateway.config.doc import render_reference

    assert "not yet described" not in render_reference()


def _run(config: Path, *extra: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "CSRGW_ALLOW_DEMO_PASSWORDS"}
    return subprocess.run([sys.executable, "-m", "gateway", "run", "--config", str(config),
                           *extra], capture_output=True, text=True, timeout=90,
                          env={**environment, **(env or {})})


def _demo_copy(tmp_path: Path, port: int, **changes: object) -> Path:
    data = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text())
    data["listen"] = {"host": "127.0.0.1", "port": port}
    data["directory"]["url"] = f"sqlite+aiosqlite:///{tmp_path / 'directory.sqlite3'}"
    data["directory"]["seed"] = str(ROOT / "config" / "directory.yaml")
    data["assertion"]["keys_dir"] = str(tmp_path / "keys")
    data["audit"]["path"] = str(tmp_path / "audit.jsonl")
    data["policies_dir"] = str(ROOT / "policies")
    data.update(changes)
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_run_refuses_demo_passwords(tmp_path: Path) -> None:
    """`run` will not serve users who still have the demo password, and says where they go."""
    result = _run(_demo_copy(tmp_path, free_port()))
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "demo password" in line and "csr-gateway demo" in line and "csr-carol" in line
    assert "Traceback" not in result.stderr


def _free_port_held() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    """A port already taken ends `run` with one line and exit 1, no traceback."""
    holder, port = _free_port_held()
    with holder:
        result = _run(_demo_copy(tmp_path, port), "--allow-demo-passwords")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("csr-gateway: cannot start:") and "address already in use" in last


def test_unwritable_audit_path_is_one_line(tmp_path: Path) -> None:
    """An audit file `run` cannot create ends it with one line and exit 1."""
    config = _demo_copy(tmp_path, free_port())
    data = yaml.safe_load(config.read_text())
    data["audit"]["path"] = "/sys/csrgw-audit/audit.jsonl"
    config.write_text(yaml.safe_dump(data))
    result = _run(config, env={"CSRGW_ALLOW_DEMO_PASSWORDS": "1"})
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("csr-gateway: cannot start:") and "/sys/csrgw-audit" in last


@pytest.mark.parametrize("command", [
    ["policy", "test"], ["policy", "matrix"],
    ["policy", "explain", "--user", "csr-carol", "GET", "/"]], ids=["test", "matrix", "explain"])
def test_policy_tools_report_a_broken_file_as_file_line(tmp_path: Path, capsys,
                                                        command: list[str]) -> None:
    """A policy that does not load is one `file:line: message`, as `check` says it."""
    import shutil

    from gateway.cli.main import main

    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    with (policies / "pages.polar").open("a") as fh:
        fh.write('\ngrant("CSR", "reports" "view");\n')
    assert main([*command, "--policies", str(policies)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{policies / 'pages.polar'}:") and "\n" not in err, err
