"""Redis, PostgreSQL and free ports: found, or the test fails under CI."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from tests.support.gateway import IN_CI


def service_up(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """In CI a missing service fails the run; locally it skips with the reason."""
    if service_up(host, port):
        return
    message = f"{name} is not running on {host}:{port}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def postgres_url() -> AsyncIterator[str]:
    import asyncpg

    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"csrgw_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
