"""Directories at an old schema revision, for the tests of the upgrades."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.directory.store import MIGRATIONS


async def upgrade_to(conn: AsyncConnection, revision: str) -> None:
    """The schema of `revision` on this connection, made by the migrations themselves."""

    def run(connection: Any) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    await conn.run_sync(run)
