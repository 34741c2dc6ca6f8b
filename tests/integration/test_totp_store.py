"""The second factor's tables on SQLite and PostgreSQL: migration 0004, one use per code,
and `csr-gateway directory reset-totp`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pyotp
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.cli.main import main
from gateway.directory import Directory
from gateway.directory.passwords import hasher
from gateway.directory.store import HEAD_REVISION
from gateway.directory.totp import SecondFactors
from gateway.services.sealing import Sealer
from gateway.services.totp import SecondFactor
from tests.support.gateway import ROOT
from tests.support.migrations import upgrade_to
from tests.support.services import postgres_url

SEED = ROOT / "config" / "directory.yaml"
CHEAP = hasher(1, 64, 1)


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: Any, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database URL: a SQLite file, or a PostgreSQL database of this test's own."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}"
        return
    urls = postgres_url()
    yield await urls.__anext__()
    await urls.aclose()


def factor(directory: Directory) -> SecondFactor:
    return SecondFactor(SecondFactors(directory.sessions), Sealer(b"k" * 32), "csr-gateway",
                        CHEAP)


async def test_upgrade_from_0003_keeps_users_and_adds_the_tables(database: str) -> None:
    """A directory at 0003 opens at the newest revision with its users, TOTP tables empty."""

    engine = create_async_engine(database)

    async with engine.begin() as conn:
        await upgrade_to(conn, "0003")
    await engine.dispose()
    directory = await Directory.open(database, SEED)
    try:
        assert directory.schema == HEAD_REVISION == "0004"
        assert directory.snapshot.user("csr-carol") is not None
        async with directory.engine.connect() as conn:
            rows = await conn.execute(text("SELECT count(*) FROM totp_credentials"))
            assert rows.scalar() == 0
        assert not await factor(directory).enabled("csr-carol")
    finally:
        await directory.close()


async def test_each_code_is_good_once_on_this_database(database: str) -> None:
    """Two requests racing with the same code or recovery code: exactly one wins."""
    directory = await Directory.open(database, SEED)
    try:
        second = factor(directory)
        secret = await second.begin("csr-carol")
        assert secret is not None
        codes = await second.confirm("csr-carol", pyotp.TOTP(secret).at(time.time() - 30))
        assert codes is not None and len(codes) == 10
        assert await second.begin("csr-carol") is None  # enabled: no silent re-enrolment
        now = pyotp.TOTP(secret).now()
        results = await asyncio.gather(*(second.check("csr-carol", now) for _ in range(4)))
        assert sorted(results) == ["totp", "totp_replayed", "totp_replayed", "totp_replayed"]
        results = await asyncio.gather(*(second.check("csr-carol", codes[0]) for _ in range(3)))
        assert sorted(results) == ["recovery", "recovery_used", "recovery_used"]
        assert await second.codes_left("csr-carol") == 9
        assert await second.remove("csr-carol") is True
        assert await second.check("csr-carol", codes[1]) == "mfa_not_enrolled"
    finally:
        await directory.close()


def _config(tmp_path: Path) -> Path:
    config = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text())
    config["directory"]["url"] = f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}"
    config["directory"]["seed"] = str(SEED)
    config["policies_dir"] = str(ROOT / "policies")
    config["state_dir"] = str(tmp_path)
    config["audit"]["path"] = str(tmp_path / "audit.jsonl")
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_cli_reset_totp(tmp_path: Path, capsys: Any) -> None:
    """reset-totp removes the enrolment and codes, audited in the commands' own chain
    (audit.wcli.jsonl, beside the gateway's); an unknown user is one line, exit 1."""
    path = _config(tmp_path)

    async def enrol() -> None:
        directory = await Directory.open(f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}", SEED)
        try:
            second = factor(directory)
            secret = await second.begin("csr-carol")
            assert secret is not None
            assert await second.confirm("csr-carol", pyotp.TOTP(secret).now()) is not None
        finally:
            await directory.close()

    asyncio.run(enrol())
    assert main(["directory", "reset-totp", "--config", str(path), "csr-carol"]) == 0
    assert "removed" in capsys.readouterr().out
    chain = (tmp_path / "audit.wcli.jsonl").read_bytes()
    lines = [orjson.loads(line) for line in chain.splitlines()]
    reset = [line for line in lines if line["event"] == "totp_reset"]
    assert len(reset) == 1 and reset[0]["user"] == "csr-carol" and reset[0]["actor"]

    async def enabled() -> bool:
        directory = await Directory.open(f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}")
        try:
            return await factor(directory).enabled("csr-carol")
        finally:
            await directory.close()

    assert asyncio.run(enabled()) is False
    assert main(["directory", "reset-totp", "--config", str(path), "nobody-x"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "no such user: nobody-x" and "Traceback" not in err
