"""`audit verify`: proves a chain of audit files was not edited, reordered or cut."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from gateway.audit.chain import GENESIS, record_hash


@dataclass(frozen=True)
class Break:
    file: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.problem}"


@dataclass(frozen=True)
class Verified:
    lines: int
    last_hash: str


def verify_files(paths: Iterable[str | Path]) -> Verified | Break:
    """The first break in the chain across the files, in order, or the intact summary."""
    previous: str | None = None
    total = 0
    for path in paths:
        result = _verify_file(Path(path), previous)
        if isinstance(result, Break):
            return result
        total += result.lines
        previous = result.last_hash
    return Verified(total, previous or GENESIS)


def _verify_file(path: Path, previous: str | None) -> Verified | Break:
    expected_seq = 0
    last = previous
    count = 0
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            count += 1
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return Break(str(path), number, "not a JSON object (edited or truncated)")
            problem = _check(record, expected_seq, last)
            if problem:
                return Break(str(path), number, problem)
            expected_seq = record["seq"] + 1
            last = record["hash"]
    return Verified(count, last or GENESIS)


def _check(record: dict[str, object], expected_seq: int, last: str | None) -> str | None:
    if record.get("hash") != record_hash(record):
        return "hash does not match the line's content (line modified)"
    seq = record.get("seq")
    if record.get("event") == "audit_start":
        if seq != 0:
            return f"audit_start with seq {seq}"
        if last is not None and record.get("prev_hash") != last:
            return "chain does not continue from the previous line (lines removed before " \
                   "a restart, or files out of order)"
        return None
    if seq != expected_seq:
        later = isinstance(seq, int) and seq > expected_seq
        what = "removed or reordered" if later else "reordered or inserted"
        return f"seq {seq} where {expected_seq} was expected (line {what})"
    if record.get("prev_hash") != last:
        return "prev_hash does not match the previous line (line removed or inserted)"
    return None
