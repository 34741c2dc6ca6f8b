"""Audit files and small disks: the records on disk, a disk filled on purpose."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import orjson


def records(*paths: Path) -> list[dict[str, Any]]:
    """Every complete line of the files (a torn last line after a kill is skipped)."""
    found = []
    for path in paths:
        for raw in path.read_bytes().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                found.append(orjson.loads(raw))
    return found


def fill(disk: Path) -> Path:
    """Take every free byte of the disk."""
    filler = disk / "filler"
    with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as fh:
        while True:
            fh.write(b"x" * 512)
    return filler


async def wait_for(check: Any, seconds: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.2)


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]
