"""The Transaction Log as auditors use it: keyset pages, filters, sorts, CSV and JSON export."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.audit.query import (
    SORTS,
    BadQuery,
    LogQuery,
    export_csv,
    export_rows,
    log_page,
    sort_key,
)
from tests.support.gateway import impersonate, login

EVENTS = ("request", "login", "impersonation_start", "impersonation_stop", "logout")
CSRS = ("csr-carol", "csr-dave", None)
START = datetime(2026, 11, 1, tzinfo=UTC)


def write_log(path: Path, count: int) -> Path:
    """`count` audit-shaped lines; every third pair shares a timestamp (seq breaks the tie)."""
    with open(path, "wb") as fh:
        for seq in range(count):
            when = START + timedelta(seconds=(seq // 2) * 30)
            csr = CSRS[seq % 3]
            record: dict[str, Any] = {
                "ts": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "event": EVENTS[seq % 5], "user": f"buyer-{seq % 7}", "actor": csr or "x",
                "csr": csr, "company": ("acme", "globex", None)[seq % 3 if csr else 2],
                "decision": "deny" if seq % 11 == 0 else "allow",
                "reason": "policy_denied" if seq % 11 == 0 else "ok",
                "impersonation_reason": f"TICKET-{seq}" if csr else None,
                "method": "GET", "path": "/a,b\"c", "status": 200, "seq": seq}
            fh.write(orjson.dumps(record) + b"\n")
    return path


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_log(tmp_path_factory.mktemp("log") / "audit.jsonl", 50_000)


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_log(tmp_path_factory.mktemp("log") / "audit.jsonl", 301)


def q(**values: str) -> LogQuery:
    return LogQuery.parse(values)


def test_first_page_is_the_newest_hundred_and_next_previous_walk_back(big_log) -> None:
    """100 rows by default, newest first; Next then Previous returns exactly page one; a
    page deep in a 50k-line log costs one pass like the first (measured, not asserted tight)."""
    first = log_page([big_log], q())
    assert [r["seq"] for r in first.rows] == list(range(49_999, 49_899, -1))
    assert first.previous is None and first.next
    started = time.perf_counter()
    second = log_page([big_log], q(after=first.next))
    took = time.perf_counter() - started
    assert [r["seq"] for r in second.rows] == list(range(49_899, 49_799, -1))
    back = log_page([big_log], q(before=second.previous or ""))
    assert [r["seq"] for r in back.rows] == [r["seq"] for r in first.rows]
    assert back.previous is None and back.next == first.next
    print(f"one page of 100 from 50,000 lines: {took:.3f} s")
    assert took < 20  # one pass, whatever the machine's load


@pytest.mark.parametrize("sort", list(SORTS))
def test_walking_every_page_visits_each_line_once_in_order(small_log, sort) -> None:
    """For every sort choice, Next from the first page to the last lists each line exactly
    once, in the export's order, and the last page has no Next."""
    seen: list[int] = []
    page = log_page([small_log], q(sort=sort, limit="7"))
    while True:
        seen += [r["seq"] for r in page.rows]
        if page.next is None:
            break
        page = log_page([small_log], q(sort=sort, limit="7", after=page.next))
    assert seen == [r["seq"] for r in export_rows([small_log], q(sort=sort))]
    assert sorted(seen) == list(range(301))


@pytest.mark.parametrize(("field", "value"), [
    ("csr", "csr-carol"), ("user", "buyer-3"), ("company", "globex"),
    ("event", "impersonation_start"), ("decision", "deny"),
], ids=["csr", "user", "company", "event", "decision"])
def test_each_filter_keeps_only_its_lines(small_log, field, value) -> None:
    """A filter keeps exactly the lines with that value, on the page and in the export."""
    rows = export_rows([small_log], q(**{field: value}))
    everything = export_rows([small_log], q())
    assert rows and rows == [r for r in everything if r[field] == value]
    assert all(r[field] == value for r in log_page([small_log], q(**{field: value})).rows)


def test_date_range_includes_both_whole_days(small_log) -> None:
    """From and To are whole UTC days, both included."""
    rows = export_rows([small_log], q(**{"from": "2026-11-01", "to": "2026-11-01"}))
    assert len(rows) == 301  # every line falls on 1 November
    assert export_rows([small_log], q(**{"from": "2026-11-02"})) == []
    assert export_rows([small_log], q(to="2026-10-31")) == []


@pytest.mark.parametrize(("query", "words"), [
    ({"sort": "ts"}, "sort: one of newest"),
    ({"from": "2026-13-01"}, "from: no such date"),
    ({"to": "yesterday"}, "to: a date as YYYY-MM-DD"),
    ({"limit": "0"}, "limit: a whole number from 1 to 1000"),
    ({"limit": "5000"}, "limit: a whole number"),
], ids=["raw-sort-key", "bad-month", "not-a-date", "zero-limit", "huge-limit"])
def test_bad_queries_are_named(query, words) -> None:
    """A query that cannot be read says which field and why."""
    with pytest.raises(BadQuery, match=words):
        LogQuery.parse(query)


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", "WzEsMl0", "eyJhIjoxfQ"],
                         ids=["not-base64", "not-json", "wrong-shape", "object"])
def test_a_damaged_page_link_is_a_clear_error(small_log, cursor) -> None:
    """A cursor that is not one of ours, or made for another sort, is a BadQuery."""
    with pytest.raises(BadQuery, match="page link is damaged"):
        log_page([small_log], q(sort="csr", after=cursor))


def test_csv_has_the_reason_column_and_survives_commas_and_quotes(small_log) -> None:
    """The CSV parses back to the same values, with impersonation_reason among them."""
    rows = export_rows([small_log], q(csr="csr-dave"))
    text = "".join(export_csv(rows))
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == len(rows) and parsed[0]["impersonation_reason"].startswith("TICKET-")
    assert parsed[0]["path"] == '/a,b"c' and parsed[0]["csr"] == "csr-dave"


def test_sort_keys_are_unique_per_line(small_log) -> None:
    """(field, ts, seq) never ties, so a page boundary never drops or repeats a line."""
    for sort in SORTS:
        keys = [sort_key(sort)(r) for r in export_rows([small_log], q())]
        assert len(set(keys)) == len(keys)


async def test_admin_page_csv_and_json_share_filters_and_paging(gateway) -> None:
    """Over HTTP: the page pages, the CSV and JSON export the same filtered view, the JSON's
    next link leads on, and a bad query is a 400 naming the field."""
    await login(gateway, "csr-carol")
    assert await impersonate(gateway, "buyer-alice", reason="TICKET-42") == 303
    await gateway.get("/")
    await gateway.post("/_gateway/logout")
    await login(gateway, "admin-ann")
    page = await gateway.get("/_gateway/admin/transactions?limit=2")
    text = await page.text()
    assert page.status == 200 and "Next →" in text and "Newest first" in text
    assert ">ts<" not in text
    shown = await gateway.get("/_gateway/admin/transactions?event=impersonation_start")
    assert "TICKET-42" in await shown.text()
    exported = await gateway.get("/_gateway/admin/transactions.csv?event=impersonation_start")
    assert exported.status == 200 and exported.headers["Content-Type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(await exported.text())))
    assert [(r["csr"], r["user"], r["impersonation_reason"]) for r in lines] == [
        ("csr-carol", "buyer-alice", "TICKET-42")]
    api = await (await gateway.get("/_gateway/api/transactions?limit=1&csr=csr-carol")).json()
    assert len(api["rows"]) == 1 and api["rows"][0]["csr"] == "csr-carol" and api["next"]
    following = await (await gateway.get(api["next"])).json()
    assert following["rows"][0]["seq"] < api["rows"][0]["seq"]
    bad = await gateway.get("/_gateway/api/transactions?sort=ts")
    assert bad.status == 400 and "sort: one of" in (await bad.json())["message"]
    bad_page = await gateway.get("/_gateway/admin/transactions?from=2026-02-30")
    assert bad_page.status == 400 and "from: no such date" in await bad_page.text()


@pytest.mark.parametrize("path", ["/_gateway/admin/transactions.csv",
                                  "/_gateway/api/transactions"], ids=["csv", "json"])
async def test_exports_are_for_those_the_policy_lets_read_the_log(gateway, path) -> None:
    """A buyer gets 403 from either export, as from the page."""
    await login(gateway, "buyer-alice")
    response = await gateway.get(path, headers={"Accept": "application/json"})
    assert response.status == 403
