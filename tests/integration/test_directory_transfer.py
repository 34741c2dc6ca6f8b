"""Directory import/export as YAML, and one-time links from the command line."""

from __future__ import annotations

import yaml

from gateway.cli.main import main
from gateway.directory.transfer import export, import_
from tests.support.gateway import gw_of


async def test_export_import_round_trip(gateway) -> None:
    """An export imported into another directory reproduces it; no hash unless asked."""
    directory = gw_of(gateway).directory
    data = await export(directory)
    assert "password_hash" not in yaml.safe_dump(data)
    assert any(u["username"] == "csr-carol" and u["assigned_companies"] == ["acme", "globex"]
               for u in data["users"])
    data["users"].append({"username": "buyer-newt", "email": "n@acme.example",
                          "company": "acme", "groups": ["Buyer"], "kind": "customer"})
    data["users"][0]["mobile"] = "555-0100"
    counts = await import_(directory, data)
    assert counts["users"] == len(data["users"])
    assert directory.snapshot.user("buyer-newt").company == "acme"
    assert directory.snapshot.user(data["users"][0]["username"]).mobile == "555-0100"
    with_hashes = await export(directory, with_hashes=True)
    assert all(u.get("password_hash", "").startswith("$argon2")
               for u in with_hashes["users"] if u["username"] == "buyer-bob")


def test_cli_export_and_invite(tmp_path, capsys) -> None:
    """`directory export` prints YAML; `directory invite` prints a one-time link."""
    from tests.support.gateway import ROOT

    config = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text())
    config["directory"]["url"] = f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}"
    config["directory"]["seed"] = str(ROOT / "config" / "directory.yaml")
    config["policies_dir"] = str(ROOT / "policies")
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["directory", "export", "--config", str(path)]) == 0
    exported = yaml.safe_load(capsys.readouterr().out)
    assert "buyer-alice" in [u["username"] for u in exported["users"]]
    assert main(["directory", "invite", "--config", str(path), "buyer-bob"]) == 0
    assert "/_gateway/activate?token=" in capsys.readouterr().out
