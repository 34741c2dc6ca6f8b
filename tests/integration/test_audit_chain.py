"""Chains across files and segments, torn tails, the anchored head, and query's arguments."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest

from gateway.audit import AuditConfig, AuditLog
from gateway.audit.anchor import REDIS_KEY, AnchorKeeper, make_anchor
from gateway.audit.verify import Break, Verified, verify_files
from gateway.cli.audit import register


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["audit", *argv])
    return int(args.func(args))


def write(path: Path, n: int = 3, anchor: AnchorKeeper | None = None) -> AuditLog:
    """One process's run: audit_start and n request lines, closed."""
    log = AuditLog(AuditConfig(path=str(path)), anchor)
    log.open()
    for i in range(n):
        log.emit("request", user=f"u{i}", status=200, decision="allow")
    log.close()
    return log


def two_workers(tmp: Path) -> list[Path]:
    write(tmp / "audit.w1.jsonl", 3)
    write(tmp / "audit.w2.jsonl", 5)
    return [tmp / "audit.w2.jsonl", tmp / "audit.w1.jsonl"]


def restarted(tmp: Path) -> list[Path]:
    write(tmp / "a.jsonl", 3)
    write(tmp / "a.jsonl", 2)
    return [tmp / "a.jsonl"]


def crashed_mid_line(tmp: Path) -> list[Path]:
    path = tmp / "a.jsonl"
    write(path, 3)
    with path.open("ab") as fh:
        fh.write(b'{"ts":"2026-12-03T10:00:00.000Z","event":"request","user":"u9"')
    write(path, 2)  # the next process starts on a new line and says the tail was torn
    return [path]


def killed_mid_line(tmp: Path) -> list[Path]:
    path = tmp / "a.jsonl"
    write(path, 3)
    with path.open("ab") as fh:
        fh.write(b'{"ts":"2026-12-03T10:00:00.000Z","event":')
    return [path]


def rotated(tmp: Path) -> list[Path]:
    path = tmp / "a.jsonl"
    log = AuditLog(AuditConfig(path=str(path)))
    log.open()
    log.emit("request", user="a")
    log.flush()
    path.rename(tmp / "a.1.jsonl")
    log.reopen()
    log.emit("request", user="b")
    log.close()
    return [tmp / "a.1.jsonl", path]


HEALTHY: dict[str, tuple[Callable[[Path], list[Path]], int, int]] = {
    "two-per-worker-files": (two_workers, 2, 0),
    "restarted-segment": (restarted, 1, 0),
    "torn-tail-then-reopened": (crashed_mid_line, 1, 1),
    "torn-tail-at-the-end": (killed_mid_line, 1, 1),
    "rotated-files": (rotated, 1, 0),
}


@pytest.mark.parametrize("case", list(HEALTHY), ids=list(HEALTHY))
def test_healthy_files_verify(tmp_path: Path, case: str, capsys) -> None:
    """Per-worker files, reopened segments and rotated files verify; a torn tail is a note,
    not tampering."""
    make, chains, torn = HEALTHY[case]
    files = make(tmp_path)
    result = verify_files(files)
    assert isinstance(result, Verified), str(result)
    assert len(result.chains) == chains and len(result.torn) == torn
    assert run_cli("verify", *map(str, files)) == 0
    assert ("torn tail" in capsys.readouterr().out) == bool(torn)


def test_reopened_segment_starts_cleanly(tmp_path: Path) -> None:
    """After a torn tail the next audit_start is on its own line and records the tear."""
    path = crashed_mid_line(tmp_path)[0]
    lines = path.read_bytes().splitlines()
    starts = [orjson.loads(x) for x in lines if x.startswith(b'{"ts"') and b"audit_start" in x]
    assert starts[-1]["torn_tail"] > 0 and starts[-1]["chain"].endswith("a.jsonl")
    assert starts[-1]["prev_hash"] == orjson.loads(lines[3])["hash"]


BROKEN = {
    "rotated-out-of-order": (lambda tmp: rotated(tmp)[::-1], "segment does not continue"),
    "line-cut-before-restart": (lambda tmp: _drop(restarted(tmp), 3), "does not continue"),
    "torn-line-mid-segment": (lambda tmp: _tear(restarted(tmp), 2), "not a JSON"),
}


def _drop(files: list[Path], index: int) -> list[Path]:
    lines = files[0].read_bytes().splitlines(keepends=True)
    files[0].write_bytes(b"".join(lines[:index] + lines[index + 1:]))
    return files


def _tear(files: list[Path], index: int) -> list[Path]:
    lines = files[0].read_bytes().splitlines(keepends=True)
    lines[index] = lines[index][:30] + b"\n"
    files[0].write_bytes(b"".join(lines))
    return files


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_tampering_across_segments_is_caught(tmp_path: Path, case: str) -> None:
    """A cut between segments, files out of order, or an edit cutting a line mid-segment
    (no segment start after it) are breaks, not torn tails."""
    make, words = BROKEN[case]
    result = verify_files(make(tmp_path))
    assert isinstance(result, Break) and words in result.problem, str(result)


@pytest.fixture(params=["redis", "postgres", "sqlite"])
async def anchor_url(request, tmp_path: Path) -> AsyncIterator[str]:
    """Where the chain heads live: Redis, a PostgreSQL database of this test's own, or the
    SQLite directory file."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'directory.sqlite3'}"
        return
    if request.param == "postgres":
        from tests.support.services import postgres_url

        urls = postgres_url()
        yield await urls.__anext__()
        await urls.aclose()
        return
    import redis.asyncio as redis

    from tests.support.services import require_service

    require_service("Redis", "127.0.0.1", 6379)
    yield "redis://127.0.0.1:6379/0"
    conn = redis.from_url("redis://127.0.0.1:6379/0")
    keys = [k async for k in conn.scan_iter(match=f"{REDIS_KEY}*{tmp_path}*")]
    if keys:
        await conn.delete(*keys)
    await conn.aclose()


async def test_anchor_shows_lines_cut_from_the_end(tmp_path: Path, anchor_url: str,
                                                   capsys) -> None:
    """With the head anchored outside the file, removing the last lines is BROKEN; without
    the anchor the shortened file would still verify."""
    path = tmp_path / "audit.jsonl"
    keeper = AnchorKeeper(make_anchor(anchor_url))
    log = AuditLog(AuditConfig(path=str(path)), keeper)
    log.open()
    for i in range(6):
        log.emit("request", user=f"u{i}", status=200)
    await log.tick()  # the keeper's second: durable, then anchored
    assert keeper.error is None and keeper.stored is not None
    log.close()
    await keeper.close()
    assert await asyncio.to_thread(run_cli, "verify", str(path), "--anchor", anchor_url) == 0
    assert "1 of 1 chains" in capsys.readouterr().out
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-2]))
    assert isinstance(verify_files([path]), Verified)  # the gap the anchor closes
    assert await asyncio.to_thread(run_cli, "verify", str(path), "--anchor", anchor_url) == 1
    out = capsys.readouterr().out
    assert "lines cut from the end: the anchor holds seq 6" in out and "ends at seq 4" in out


async def test_verify_reads_the_anchor_from_the_config(tmp_path: Path, upstream,
                                                       make_gateway, capsys) -> None:
    """`audit.anchor: directory` anchors into the directory database; `verify --config`
    finds it there."""
    import yaml

    from tests.support.gateway import ROOT, login

    client = await make_gateway(audit={"anchor": "directory"})
    await login(client, "buyer-alice")
    await client.post("/cart/add", data={"sku": "A-1"})
    await client.close()  # shutdown stores the final head
    config = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text())
    config["directory"]["url"] = f"sqlite+aiosqlite:///{tmp_path / 'directory.sqlite3'}"
    config["audit"]["anchor"] = "directory"
    (tmp_path / "gw.yaml").write_text(yaml.safe_dump(config))
    audit = tmp_path / "audit.jsonl"
    config_file = str(tmp_path / "gw.yaml")
    assert await asyncio.to_thread(run_cli, "verify", str(audit), "--config", config_file) == 0
    lines = audit.read_bytes().splitlines(keepends=True)
    audit.write_bytes(b"".join(lines[:-1]))
    assert await asyncio.to_thread(run_cli, "verify", str(audit), "--config", config_file) == 1
    assert "cut from the end" in capsys.readouterr().out


QUERY_ERRORS = {
    "since-words": (["--since", "yesterday"], "--since 'yesterday': expected an ISO time"),
    "until-garbage": (["--until", "2026-13-45"], "--until '2026-13-45'"),
    "sort-unknown": (["--sort", "bogus"], "cannot sort by 'bogus'"),
}


@pytest.mark.parametrize("case", list(QUERY_ERRORS), ids=list(QUERY_ERRORS))
def test_query_rejects_bad_arguments(tmp_path: Path, case: str, capsys) -> None:
    """A bad --since/--until/--sort: exit 2 and one clear line, no traceback."""
    write(tmp_path / "a.jsonl")
    argv, message = QUERY_ERRORS[case]
    assert run_cli("query", str(tmp_path / "a.jsonl"), *argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_query_counts_unreadable_lines(tmp_path: Path, capsys) -> None:
    """Lines that are not JSON objects are skipped and counted on stderr."""
    path = killed_mid_line(tmp_path)[0]
    with path.open("ab") as fh:
        fh.write(b"\n[1, 2]\n")
    assert run_cli("query", str(path), "--format", "json") == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 4
    assert captured.err.startswith("2 lines could not be read")
