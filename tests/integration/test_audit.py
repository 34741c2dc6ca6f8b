"""The audit trail: stable schema, redaction, hash chain, verify and query."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import orjson
import pytest

from gateway.audit import AUDIT_KEYS, AuditConfig, AuditLog
from gateway.audit.query import Filter, parse_time, select, transaction_rows
from gateway.audit.verify import Break, verify_files
from gateway.cli.audit import register
from tests.support.gateway import audit_lines, gw_of, impersonate, login


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["audit", *argv])
    return int(args.func(args))


def write_log(path: Path, n: int = 5) -> list[bytes]:
    log = AuditLog(AuditConfig(path=str(path)))
    log.open()
    for i in range(n):
        log.emit("request", user=f"u{i}", path=f"/p{i}", status=200, decision="allow")
    log.close()
    return path.read_bytes().splitlines(keepends=True)


def test_schema_keys_are_stable() -> None:
    """The contract's keys, in order; renaming one fails this test."""
    assert AUDIT_KEYS == (
        "ts", "event", "request_id", "user", "actor", "csr", "company", "method", "path",
        "page", "action", "decision", "reason", "status", "duration_ms", "client_ip",
        "policy_rev", "impersonation_id", "impersonation_reason", "trace_id", "seq",
        "prev_hash", "hash")


def test_every_line_has_every_key(tmp_path: Path) -> None:
    """Events with few facts still carry every key (null when not applicable)."""
    write_log(tmp_path / "a.jsonl", 1)
    for raw in (tmp_path / "a.jsonl").read_bytes().splitlines():
        record = orjson.loads(raw)
        assert set(AUDIT_KEYS) <= set(record)
        assert record["ts"].endswith("Z") and "T" in record["ts"]


def test_intact_chain_verifies(tmp_path: Path) -> None:
    """An untouched file verifies."""
    write_log(tmp_path / "a.jsonl")
    result = verify_files([tmp_path / "a.jsonl"])
    assert not isinstance(result, Break) and result.lines == 6


TAMPER = {
    "delete": (lambda ls: ls[:3] + ls[4:], 4, "removed"),
    "modify": (lambda ls: [*ls[:2], ls[2].replace(b'"u1"', b'"uX"'), *ls[3:]], 3, "modified"),
    "reorder": (lambda ls: [*ls[:2], ls[3], ls[2], *ls[4:]], 3, "removed"),
    "insert": (lambda ls: [*ls[:3], ls[1], *ls[3:]], 4, "reordered or inserted"),
    "truncate-line": (lambda ls: [*ls[:3], ls[3][:40] + b"\n", *ls[4:]], 4, "not a JSON"),
}


@pytest.mark.parametrize("name", list(TAMPER))
def test_tampering_is_caught_at_the_right_line(tmp_path: Path, name: str) -> None:
    """Deleting, editing, reordering or inserting a line is reported at its line number."""
    path = tmp_path / "a.jsonl"
    lines = write_log(path)
    change, line, words = TAMPER[name]
    path.write_bytes(b"".join(change(lines)))
    result = verify_files([path])
    assert isinstance(result, Break), name
    assert result.line == line and words in result.problem, str(result)
    assert run_cli("verify", str(path)) == 1


def test_restart_continues_the_chain(tmp_path: Path) -> None:
    """A second process appending to the file chains to the last line written before."""
    path = tmp_path / "a.jsonl"
    write_log(path, 2)
    write_log(path, 2)
    assert not isinstance(verify_files([path]), Break)
    lines = path.read_bytes().splitlines()
    lines.pop(2)  # the last line of the first run
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert isinstance(verify_files([path]), Break)


def test_rotation_chains_files(tmp_path: Path) -> None:
    """After logrotate moves the file and SIGHUP reopens it, the two files verify as one."""
    path = tmp_path / "a.jsonl"
    log = AuditLog(AuditConfig(path=str(path)))
    log.open()
    log.emit("request", user="a")
    log.flush()
    path.rename(tmp_path / "a.1.jsonl")
    log.reopen()
    log.emit("request", user="b")
    log.close()
    assert not isinstance(verify_files([tmp_path / "a.1.jsonl", path]), Break)
    assert isinstance(verify_files([path, tmp_path / "a.1.jsonl"]), Break)


@pytest.mark.parametrize(("fields", "key", "expected"), [
    ({"path": "/reset?token=abc&x=1"}, "path", "/reset?token=[redacted]&x=1"),
    ({"path": "/a?password=p"}, "path", "/a?password=[redacted]"),
    ({"cookie": "csrgw_session=1"}, "cookie", "[redacted]"),
    ({"authorization": "Bearer x"}, "authorization", "[redacted]"),
    ({"csrf_token": "t"}, "csrf_token", "[redacted]"),
    ({"path": "/a?q=shoes"}, "path", "/a?q=shoes"),
], ids=["token-param", "password-param", "cookie", "authorization", "csrf", "harmless"])
def test_redaction(tmp_path: Path, fields: dict[str, str], key: str, expected: str) -> None:
    """Secrets never reach the file."""
    log = AuditLog(AuditConfig(path=str(tmp_path / "a.jsonl")))
    log.open()
    assert log.emit("request", **fields)[key] == expected
    log.close()


def test_newlines_and_ansi_cannot_forge_lines(tmp_path: Path) -> None:
    """A username with a newline and a fake JSON object stays inside one line."""
    path = tmp_path / "a.jsonl"
    log = AuditLog(AuditConfig(path=str(path)))
    log.open()
    log.emit("login_failed", user='x\n{"event":"login","user":"admin-ann"}\x1b[2J')
    log.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2
    assert orjson.loads(lines[1])["event"] == "login_failed"


def test_query_filters_and_formats(tmp_path: Path, capsys) -> None:
    """query filters by key, path glob and time, and prints table, json or csv."""
    path = tmp_path / "a.jsonl"
    log = AuditLog(AuditConfig(path=str(path)))
    log.open()
    log.emit("request", csr="csr-carol", user="buyer-alice", company="acme", method="POST",
             path="/checkout", status=303, decision="allow", state_changing=True)
    log.emit("request", csr=None, user="buyer-bob", company="globex", method="GET",
             path="/cart", status=200, decision="allow")
    log.close()
    found = list(select([path], Filter({"company": "acme"}, path_glob="/check*",
                                       state_changing=True)))
    assert [r["user"] for r in found] == ["buyer-alice"]
    assert list(select([path], Filter({}, since=parse_time("1h")))) != []
    assert list(select([path], Filter({}, until=parse_time("1d")))) == []
    assert run_cli("query", str(path), "--csr", "csr-carol", "--format", "json") == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and orjson.loads(out[0])["path"] == "/checkout"
    assert run_cli("query", str(path), "--event", "request", "--format", "csv") == 0
    assert capsys.readouterr().out.startswith("ts,event,actor,csr,user")
    assert run_cli("query", str(path), "--decision", "allow") == 0
    assert "buyer-bob" in capsys.readouterr().out


async def test_transaction_log_rows(gateway) -> None:
    """newest first, with 'Impersonation Starts: <csr> Starts Impersonating <buyer>'."""
    await login(gateway, "csr-carol")
    await impersonate(gateway, "buyer-alice")
    await gateway.get("/cart")
    audit_lines(gateway)
    rows = transaction_rows([gw_of(gateway).settings.audit.path], csr="csr-carol")
    assert rows[0]["ts"] >= rows[-1]["ts"]
    assert any(r["summary"] == "Impersonation Starts: csr-carol Starts Impersonating "
                               "buyer-alice" for r in rows)
    assert all(r["csr"] == "csr-carol" for r in rows)


async def test_one_line_per_request_and_verified(gateway) -> None:
    """Every request, refused ones included, leaves exactly one request line; the file of a
    real gateway verifies."""
    await gateway.get("/cart", headers={"Accept": "application/json"})
    await gateway.get("/a%2fb")
    await login(gateway, "buyer-alice")
    await gateway.get("/cart")
    lines = audit_lines(gateway)
    requests = [r for r in lines if r["event"] == "request"]
    assert [r["status"] for r in requests] == [401, 400, 303, 200]
    assert not isinstance(verify_files([gw_of(gateway).settings.audit.path]), Break)


async def test_unwritable_audit_fails_closed_then_heals(make_gateway, upstream) -> None:
    """A descriptor that cannot write: a POST gets 503 and is not forwarded, probes still
    answer JSON; the next retry opens a new segment and serves again, no SIGHUP."""
    import os

    client = await make_gateway()
    await login(client, "buyer-alice")
    gw = gw_of(client)
    assert gw.audit.file is not None and gw.audit.file.fd is not None
    gw.audit.flush()
    readonly = os.open(gw.settings.audit.path, os.O_RDONLY)
    os.dup2(readonly, gw.audit.file.fd)  # the file became unwritable under the gateway
    os.close(readonly)
    before = len(upstream.seen)
    resp = await client.post("/cart/add", data={"sku": "A-1"})
    assert resp.status == 503 and len(upstream.seen) == before
    assert (await client.post("/cart/add", data={"sku": "A-1"})).status == 503
    assert (await client.get("/_gateway/healthz")).status == 200
    ready = await client.get("/_gateway/readyz")
    assert ready.status == 503
    assert "Bad file descriptor" in (await ready.json())["checks"]["audit"]
    assert await gw.audit.heal()
    assert (await client.get("/cart")).status == 200
    records = audit_lines(client)
    resumed = [r for r in records if r["event"] == "audit_resumed"]
    assert len(resumed) == 1 and resumed[0]["refused"] == 1  # the second POST, at the gate
    # the first POST's intent and outcome never reached the dead descriptor: counted
    assert [r.get("lost_lines") for r in records if r["event"] == "audit_start"] == [None, 2]
    assert not isinstance(verify_files([gw.settings.audit.path]), Break)


async def test_configured_extra_redaction(make_gateway) -> None:
    """`audit.redact_keys` hides more keys, e.g. client addresses, in every line."""
    client = await make_gateway(audit={"redact_keys": ("client_ip",)})
    await client.get("/_gateway/healthz")
    assert {r["client_ip"] for r in audit_lines(client)} <= {"[redacted]", None}


async def test_periodic_sync_reaches_the_disk_and_survives_a_reopen(tmp_path: Path,
                                                                    monkeypatch) -> None:
    """The 1-second sync writes the buffer and fsyncs in a worker thread (the loop never
    waits for the disk); a logrotate reopen while that fsync runs does not break the log."""
    import asyncio
    import os
    import threading

    path = tmp_path / "a.jsonl"
    log = AuditLog(AuditConfig(path=str(path)))
    log.open()
    log.emit("request", status=200)
    assert path.read_bytes() == b""  # still pending in memory
    threads: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        threads.append(threading.current_thread().name)
        if len(threads) == 1:
            log.reopen()  # logrotate's SIGHUP lands while the disk is being waited for
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    await log.tick()
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert threads and threads[0] != threading.main_thread().name
    assert log.healthy
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [r["event"] for r in records][:2] == ["audit_start", "request"]
    log.close()
    await asyncio.sleep(0)


async def test_client_disconnect_keeps_the_request_line(make_gateway, upstream) -> None:
    """A client that hangs up while the shop works still leaves its intent and its request
    line (aborted, 499), not a 500 nor nothing."""
    import asyncio

    import aiohttp

    client = await make_gateway()
    await login(client, "buyer-alice")
    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
        await client.post("/cart/add", data={"sku": "A-1"}, headers={"X-Test-Delay": "0.6"},
                          timeout=aiohttp.ClientTimeout(total=0.2))
    await asyncio.sleep(1.0)  # the shop answers into a closed connection
    lines = [r for r in audit_lines(client) if r["path"] == "/cart/add"]
    assert [r["event"] for r in lines] == ["request_intent", "request"]
    assert lines[1]["request_id"] == lines[0]["request_id"]
    assert lines[1]["outcome"] == "aborted" and lines[1]["status"] == 499


async def test_concurrent_intents_share_fsyncs(tmp_path: Path, monkeypatch) -> None:
    """Group commit: 50 intents waiting at once are made durable by a few fsyncs, each in a
    worker thread, not by 50."""
    import asyncio
    import os
    import threading

    log = AuditLog(AuditConfig(path=str(tmp_path / "a.jsonl")))
    log.open()
    calls: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        calls.append(threading.current_thread().name)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    async def intent(i: int) -> None:
        log.emit("request_intent", request_id=f"r{i}", method="POST")
        await log.durable()

    await asyncio.gather(*(intent(i) for i in range(50)))
    assert log.file is not None and log.file.durable == log.file.lines == 51
    assert 1 <= len(calls) <= 3, calls
    assert threading.main_thread().name not in calls
    log.close()
