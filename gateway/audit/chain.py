"""Hash chaining of audit records: sha256 over the canonical line without its own hash."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

GENESIS = "0" * 64


def canonical(record: dict[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k != "hash"} if "hash" in record else record
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=str)


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def last_hash_of(path: str) -> tuple[str | None, int | None]:
    """The hash and seq of a file's last complete line (None when empty or unreadable)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 65536))
            lines = fh.read().splitlines()
    except OSError:
        return None, None
    for line in reversed(lines):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        return record.get("hash"), record.get("seq")
    return None, None
