"""`audit verify`: proves audit files were not edited, reordered or cut.

Each file names its chain in its `audit_start` lines (host and configured path), so the
per-worker files of one run are separate chains and rotated files of one path are one
chain, in the order given. Within a chain every segment (from one `audit_start`) carries
the previous segment's head; an anchored head (Redis/PostgreSQL) shows lines cut from the
end. A line cut short by a crash or a full disk, ended by the next segment's start, is a
torn tail: reported, not taken for tampering.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gateway.audit.chain import GENESIS, record_hash

Head = dict[str, Any]  # {"segment", "seq", "hash"} as the anchor stores it


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
    chains: dict[str, int] = field(default_factory=dict)  # chain -> lines
    torn: tuple[str, ...] = ()  # file:line of each torn tail
    anchored: tuple[str, ...] = ()  # chains whose anchored head was found


@dataclass
class _Chain:
    name: str
    anchor: Head | None
    last: str | None = None
    expected_seq: int = 0
    lines: int = 0
    segment: str | None = None
    segment_seqs: dict[str, int] = field(default_factory=dict)  # segment -> last seq
    anchor_found: bool = False
    torn: list[str] = field(default_factory=list)


def verify_files(paths: Iterable[str | Path],
                 anchor: Callable[[str], Head | None] | None = None) -> Verified | Break:
    """The first break in any chain, or the intact summary of all of them."""
    chains: dict[str, _Chain] = {}
    last_file: dict[str, str] = {}
    for path in map(Path, paths):
        name = chain_of(path)
        chain = chains.get(name)
        if chain is None:
            chain = chains[name] = _Chain(name, anchor(name) if anchor and name else None)
        result = _verify_file(path, chain)
        if result is not None:
            return result
        last_file[name] = str(path)
    for chain in chains.values():
        problem = _anchor_problem(chain)
        if problem:
            return Break(last_file[chain.name], 0, problem)
    last = next(reversed(chains.values())).last if chains else None
    return Verified(sum(c.lines for c in chains.values()), last or GENESIS,
                    {c.name: c.lines for c in chains.values()},
                    tuple(t for c in chains.values() for t in c.torn),
                    tuple(c.name for c in chains.values() if c.anchor_found))


def chain_of(path: Path) -> str:
    """The chain a file belongs to: the `chain` of its first audit_start ('' if none)."""
    with path.open("rb") as fh:
        for raw in fh:
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if record.get("event") == "audit_start":
                return str(record.get("chain") or "")
    return ""


def _verify_file(path: Path, chain: _Chain) -> Break | None:
    torn_at: int | None = None
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                if torn_at is not None:
                    return Break(str(path), torn_at, "not a JSON object (edited or truncated)")
                torn_at = number
                continue
            if torn_at is not None:
                if record.get("event") != "audit_start" or not record.get("torn_tail"):
                    return Break(str(path), torn_at, "not a JSON object (edited or truncated)")
                chain.torn.append(f"{path}:{torn_at}")
                torn_at = None
            problem = _check(record, chain)
            if problem:
                return Break(str(path), number, problem)
            _advance(record, chain)
    if torn_at is not None:  # the file ends inside a line: a write cut by a crash
        chain.torn.append(f"{path}:{torn_at}")
    return None


def _advance(record: dict[str, Any], chain: _Chain) -> None:
    if record.get("event") == "audit_start":
        chain.segment = record["hash"]
    chain.expected_seq = record["seq"] + 1
    chain.last = record["hash"]
    chain.lines += 1
    if chain.segment is not None:
        chain.segment_seqs[chain.segment] = record["seq"]
    head = chain.anchor
    if head and record["hash"] == head.get("hash") and record["seq"] == head.get("seq"):
        chain.anchor_found = True


def _check(record: dict[str, Any], chain: _Chain) -> str | None:
    if record.get("hash") != record_hash(record):
        return "hash does not match the line's content (line modified)"
    seq = record.get("seq")
    if record.get("event") == "audit_start":
        if seq != 0:
            return f"audit_start with seq {seq}"
        if chain.last is not None and record.get("prev_hash") != chain.last:
            return "segment does not continue from the previous line (lines removed before " \
                   "a restart, or files out of order)"
        return None
    if seq != chain.expected_seq:
        later = isinstance(seq, int) and seq > chain.expected_seq
        what = "removed or reordered" if later else "reordered or inserted"
        return f"seq {seq} where {chain.expected_seq} was expected (line {what})"
    if record.get("prev_hash") != chain.last:
        return "prev_hash does not match the previous line (line removed or inserted)"
    return None


def _anchor_problem(chain: _Chain) -> str | None:
    head = chain.anchor
    if head is None or chain.anchor_found:
        return None
    segment, seq = str(head.get("segment")), head.get("seq")
    last_seq = chain.segment_seqs.get(segment)
    if isinstance(last_seq, int) and isinstance(seq, int) and last_seq >= seq:
        return f"the line at seq {seq} is not the anchored one (the chain was rewritten)"
    if last_seq is not None:
        return (f"lines cut from the end: the anchor holds seq {seq} of this segment, the "
                f"file ends at seq {chain.segment_seqs[segment]}")
    return (f"the anchored segment {segment[:16]}… (seq {seq}) is not in these files (a file "
            "cut or replaced, or a newer file not given)")
