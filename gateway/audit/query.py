"""`audit query` and the Transaction Log: filter, sort and render audit lines."""

from __future__ import annotations

import base64
import binascii
import csv
import fnmatch
import heapq
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from gateway.core.i18n import N_, gettext

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
    """The Transaction Log's one-line description of a record."""
    event = record.get("event")
    if event == "impersonation_start":
        return gettext("Impersonation Starts: %(csr)s Starts Impersonating %(user)s") % {
            "csr": record.get("csr"), "user": record.get("user")}
    if event == "impersonation_stop":
        return gettext("Impersonation Stops: %(csr)s Stops Impersonating %(user)s") % {
            "csr": record.get("csr"), "user": record.get("user")}
    if event == "impersonation_end":
        return gettext("Impersonation Ends: %(csr)s as %(user)s (%(reason)s)") % {
            "csr": record.get("csr"), "user": record.get("user"), "reason": record.get("reason")}
    if event == "request":
        return f"{record.get('method')} {record.get('path')} -> {record.get('status')}"
    return f"{str(event).replace('_', ' ').capitalize()}: {record.get('reason') or ''}".strip()


EXPORT_COLUMNS = ("ts", "event", "csr", "actor", "user", "company", "method", "path",
                  "decision", "reason", "status", "impersonation_reason", "request_id")
# sort choices as the Transaction Log offers them: name -> (words, field or None for time)
SORTS: dict[str, tuple[str, str | None]] = {
    "newest": (N_("Newest first"), None), "oldest": (N_("Oldest first"), None),
    "csr": (N_("CSR (A to Z), then time"), "csr"),
    "user": (N_("User (A to Z), then time"), "user"),
    "company": (N_("Company (A to Z), then time"), "company"),
    "event": (N_("Event (A to Z), then time"), "event"),
}
FILTERS = ("csr", "user", "company", "event", "decision")
PAGE_SIZE = 100
Key = tuple[Any, ...]


class BadQuery(ValueError):
    """A Transaction Log filter or cursor that cannot be read; the message names it."""


@dataclass(frozen=True)
class LogQuery:
    """What the Transaction Log, its CSV and its JSON are asked: filters, sort, a page."""

    equals: dict[str, str]
    since: str | None = None  # the dates as typed, YYYY-MM-DD
    until: str | None = None
    sort: str = "newest"
    after: str | None = None  # cursor: the page after this row
    before: str | None = None  # cursor: the page before this row
    limit: int = PAGE_SIZE

    @classmethod
    def parse(cls, query: dict[str, str], max_limit: int = 1000) -> LogQuery:
        equals = {k: query[k] for k in FILTERS if query.get(k)}
        sort = query.get("sort") or "newest"
        if sort not in SORTS:
            raise BadQuery(f"sort: one of {', '.join(SORTS)}")
        since, until = (query.get(k) or None for k in ("from", "to"))
        for name, value in (("from", since), ("to", until)):
            if value and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise BadQuery(f"{name}: a date as YYYY-MM-DD, not {value!r}")
            if value:
                try:
                    datetime.fromisoformat(value)
                except ValueError:
                    raise BadQuery(f"{name}: no such date {value!r}") from None
        limit_text = query.get("limit") or str(PAGE_SIZE)
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= max_limit:
            raise BadQuery(f"limit: a whole number from 1 to {max_limit}")
        return cls(equals, since, until, sort, query.get("after") or None,
                   query.get("before") or None, int(limit_text))

    def filter(self) -> Filter:
        return Filter(self.equals, since=f"{self.since}T00:00:00" if self.since else None,
                      until=f"{self.until}T23:59:59.999999Z" if self.until else None)

    def params(self, **change: str | None) -> dict[str, str]:
        """The query string that asks this again (for links), with some keys changed."""
        out = {**self.equals, "from": self.since, "to": self.until, "sort": self.sort,
               "after": self.after, "before": self.before, **change}
        if self.limit != PAGE_SIZE:
            out["limit"] = str(self.limit)
        return {k: v for k, v in out.items() if v and not (k == "sort" and v == "newest")}


@dataclass(frozen=True)
class LogPage:
    rows: list[dict[str, Any]]
    next: str | None  # cursor for "Next", or None on the last page
    previous: str | None  # cursor for "Previous", or None on the first page


def sort_key(sort: str) -> Any:
    """Ascending key of a record for a sort choice: (field, ts, seq), unique per line."""
    field = SORTS[sort][1]

    def key(record: dict[str, Any]) -> Key:
        seq = record.get("seq")
        when = (str(record.get("ts") or ""), seq if isinstance(seq, int) else -1)
        if field is None:
            return when
        value = record.get(field)
        return (value is None, "" if value is None else str(value), *when)
    return key


def encode_cursor(key: Key) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_cursor(text: str) -> Key:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadQuery("the page link is damaged; start again from the first page") from None
    if not isinstance(value, list):
        raise BadQuery("the page link is damaged; start again from the first page")
    return tuple(value)


def log_page(paths: Iterable[str | Path], query: LogQuery) -> LogPage:
    """One page in one pass over the log, holding only a page of rows: keyset paging on
    (sort field, ts, seq), so page 500 costs what page 1 does and new lines never shift it."""
    key = sort_key(query.sort)
    flt = query.filter()
    matches = (r for r in read_records(paths) if flt.accepts(r))
    backwards = query.before is not None
    marker = query.before or query.after
    cursor = decode_cursor(marker) if marker else None
    if cursor is not None and len(cursor) != (2 if SORTS[query.sort][1] is None else 4):
        raise BadQuery("the page link is damaged; start again from the first page")
    smaller = (query.sort == "newest") != backwards  # which side of the cursor the page is
    if cursor is not None:
        matches = (r for r in matches if (key(r) < cursor) == smaller and key(r) != cursor)
    pick = heapq.nlargest if smaller else heapq.nsmallest
    try:
        rows = pick(query.limit + 1, matches, key=key)
    except TypeError:  # a cursor made for another sort
        raise BadQuery("the page link is damaged; start again from the first page") from None
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    if backwards:
        rows.reverse()
    first = encode_cursor(key(rows[0])) if rows else None
    last = encode_cursor(key(rows[-1])) if rows else None
    has_previous = more if backwards else cursor is not None
    has_next = True if backwards else more
    return LogPage([{**r, "summary": summary(r)} for r in rows],
                   last if has_next and rows else None,
                   first if has_previous and rows else None)


def export_rows(paths: Iterable[str | Path], query: LogQuery) -> list[dict[str, Any]]:
    """Every line the filters let through, in the chosen order (the whole filtered view)."""
    flt = query.filter()
    return sorted((r for r in read_records(paths) if flt.accepts(r)), key=sort_key(query.sort),
                  reverse=query.sort == "newest")


def export_csv(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """CSV lines with a header row; empty cells for absent values."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    yield out.getvalue()
    for record in records:
        out.seek(0)
        out.truncate()
        writer.writerow(["" if record.get(c) is None else str(record.get(c))
                         for c in EXPORT_COLUMNS])
        yield out.getvalue()


def transaction_rows(paths: Iterable[str | Path], *, csr: str | None = None, sort: str = "ts",
                     reverse: bool = True, limit: int = 200) -> list[dict[str, Any]]:
    """Newest first by default; only lines a CSR column applies to when `csr` is given."""
    flt = Filter({"csr": csr} if csr else {})
    rows = list(select(paths, flt, sort=sort, reverse=reverse, limit=limit))
    return [{**r, "summary": summary(r)} for r in rows]
