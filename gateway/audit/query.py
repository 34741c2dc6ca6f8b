"""`audit query` and the Transaction Log: filter, sort and render audit lines."""

from __future__ import annotations

import csv
import fnmatch
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

TABLE_COLUMNS = ("ts", "event", "actor", "csr", "user", "company", "method", "path",
                 "decision", "reason", "status")
_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, now: datetime | None = None) -> str:
    """ISO date/time or a relative age (`7d`, `24h`) -> an RFC 3339 UTC string to compare."""
    found = _RELATIVE.match(text.strip())
    if found:
        delta = timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
        moment = (now or datetime.now(UTC)) - delta
    else:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Filter:
    equals: dict[str, str]
    since: str | None = None
    until: str | None = None
    path_glob: str | None = None
    state_changing: bool = False

    def accepts(self, record: dict[str, Any]) -> bool:
        if any(str(record.get(k)) != v for k, v in self.equals.items()):
            return False
        ts = str(record.get("ts", ""))
        if (self.since and ts < self.since) or (self.until and ts > self.until):
            return False
        if self.path_glob and not fnmatch.fnmatchcase(
                str(record.get("path") or "").split("?", 1)[0], self.path_glob):
            return False
        return not self.state_changing or record.get("state_changing") is True


@dataclass
class Unreadable:
    """Lines that were not JSON objects (a torn tail, an edit): counted, then skipped."""

    count: int = 0


def read_records(paths: Iterable[str | Path],
                 unreadable: Unreadable | None = None) -> Iterator[dict[str, Any]]:
    """Line by line, so files larger than memory stream through."""
    for path in paths:
        with open(path, "rb") as fh:
            for raw in fh:
                if raw.strip():
                    try:
                        record = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        record = None
                    if isinstance(record, dict):
                        yield record
                    elif unreadable is not None:
                        unreadable.count += 1


def select(paths: Iterable[str | Path], flt: Filter, sort: str | None = None,
           reverse: bool = False, limit: int | None = None,
           unreadable: Unreadable | None = None) -> Iterator[dict[str, Any]]:
    matches: Iterable[dict[str, Any]] = (r for r in read_records(paths, unreadable)
                                         if flt.accepts(r))
    if sort:
        matches = sorted(matches, key=lambda r: (r.get(sort) is None, str(r.get(sort))),
                         reverse=reverse)
    for count, record in enumerate(matches):
        if limit is not None and count >= limit:
            return
        yield record


def render(records: Iterable[dict[str, Any]], fmt: str) -> Iterator[str]:
    if fmt == "json":
        for record in records:
            yield orjson.dumps(record).decode()
        return
    rows = [[_cell(r.get(c)) for c in TABLE_COLUMNS] for r in records]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(TABLE_COLUMNS)
        writer.writerows(rows)
        yield out.getvalue().rstrip("\n")
        return
    widths = [max([len(c)] + [len(row[i]) for row in rows]) for i, c in enumerate(TABLE_COLUMNS)]
    yield "  ".join(c.ljust(w) for c, w in zip(TABLE_COLUMNS, widths, strict=True)).rstrip()
    for row in rows:
        yield "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def summary(record: dict[str, Any]) -> str:
    """The Transaction Log's one-line description of a record (R8)."""
    event = record.get("event")
    if event == "impersonation_start":
        return (f"Impersonation Starts: {record.get('csr')} Starts Impersonating "
                f"{record.get('user')}")
    if event == "impersonation_stop":
        return (f"Impersonation Stops: {record.get('csr')} Stops Impersonating "
                f"{record.get('user')}")
    if event == "impersonation_end":
        return (f"Impersonation Ends: {record.get('csr')} as {record.get('user')} "
                f"({record.get('reason')})")
    if event == "request":
        return f"{record.get('method')} {record.get('path')} -> {record.get('status')}"
    return f"{str(event).replace('_', ' ').capitalize()}: {record.get('reason') or ''}".strip()


def transaction_rows(paths: Iterable[str | Path], *, csr: str | None = None, sort: str = "ts",
                     reverse: bool = True, limit: int = 200) -> list[dict[str, Any]]:
    """Newest first by default; only lines a CSR column applies to when `csr` is given."""
    flt = Filter({"csr": csr} if csr else {})
    rows = list(select(paths, flt, sort=sort, reverse=reverse, limit=limit))
    return [{**r, "summary": summary(r)} for r in rows]
