"""Nothing lost, nothing let through: a real gateway process under audit-sink faults."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from typing import Any

import aiohttp
import pytest

from gateway.audit.verify import Break, verify_files
from tests.support.disk import fill, records, wait_for, worker_pids
from tests.support.processes import http_login, launch_gateway, stop_process

JSON = {"Accept": "application/json"}


async def post(session: aiohttp.ClientSession, url: str) -> tuple[int, str | None]:
    async with session.post(url, data={"sku": "A-1"}, headers=JSON,
                            allow_redirects=False) as resp:
        body = await resp.json(content_type=None) if resp.status >= 400 else {}
        return resp.status, body.get("request_id") if isinstance(body, dict) else None


async def probes(session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with session.get(f"{base}/_gateway/healthz") as health, \
            session.get(f"{base}/_gateway/readyz") as ready, \
            session.get(f"{base}/_gateway/metrics") as metrics:
        return {"healthz": (health.status, await health.json()),
                "readyz": (ready.status, await ready.json()),
                "metrics": (metrics.status, metrics.content_type, await metrics.text())}


async def test_full_disk_refuses_then_heals_without_sighup(tmp_path, seeded_directory,
                                                          upstream, small_disk) -> None:
    """Disk full: a POST whose intent cannot be made durable gets 503 and never reaches
    the shop; probes answer JSON/text; once space returns the gateway serves again by
    itself and writes audit_resumed with the refusals counted."""
    audit = small_disk / "audit.jsonl"
    proc, base = launch_gateway(tmp_path, seeded_directory, upstream.url,
                                audit={"path": str(audit)})
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            await http_login(s, base, "buyer-alice")
            assert (await post(s, f"{base}/cart/add"))[0] == 200
            filler = fill(small_disk)
            refused: list[str | None] = []
            for _ in range(40):
                status, request_id = await post(s, f"{base}/cart/add")
                if status == 503:
                    refused.append(request_id)
            forwarded = {x.header("X-Request-Id") for x in upstream.seen}
            assert refused and not forwarded & set(refused)
            seen = len(upstream.seen)
            assert len(refused) == 40, "with the disk full every POST is refused"
            state = await probes(s, base)
            assert state["healthz"][0] == 200 and "No space" in state["healthz"][1]["audit"]
            assert state["readyz"][0] == 503 and "No space" in state["readyz"][1]["checks"]["audit"]
            assert state["metrics"][0] == 200 and "csrgw_audit_healthy 0.0" in state["metrics"][2]
            filler.unlink()

            async def ready() -> bool:
                async with s.get(f"{base}/_gateway/readyz") as resp:
                    return resp.status == 200

            assert await wait_for(ready), "the gateway did not recover by itself"
            assert (await post(s, f"{base}/cart/add"))[0] == 200
            assert len(upstream.seen) == seen + 1
    finally:
        stop_process(proc)
    lines = records(audit)
    resumed = [r for r in lines if r["event"] == "audit_resumed"]
    print(f"\nfull disk: {len(refused)} POSTs refused, 0 forwarded while down; "
          f"audit_resumed refused={resumed[0]['refused'] if resumed else None}")
    assert len(resumed) == 1
    # the first refused POST got past the gate: its intent and 503 line waited in memory
    # and were written on recovery; the rest were counted at the gate
    assert resumed[0]["refused"] == len(refused) - 1
    first = [r for r in lines if r["request_id"] == refused[0]]
    assert [r["event"] for r in first] == ["request_intent", "request"]
    assert not isinstance(verify_files([audit]), Break)


async def test_unwritable_audit_path_at_start_is_one_line(tmp_path, seeded_directory,
                                                          upstream) -> None:
    """An audit directory on a read-only file system at start: `run` refuses in one line
    naming audit.path (a sink that fails while serving heals by itself: see the full-disk
    test and tests/integration/test_audit.py); made writable, the same configuration serves."""
    logs = tmp_path / "logs"
    logs.mkdir()
    subprocess.run(["mount", "--bind", str(logs), str(logs)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(logs)], check=True)
    try:
        with pytest.raises(RuntimeError) as refused:
            launch_gateway(tmp_path, seeded_directory, upstream.url,
                           audit={"path": str(logs / "audit.jsonl")})
        message = str(refused.value).strip()
        assert "audit.path" in message and "Read-only" in message
        assert "Traceback" not in message and len(message.splitlines()) == 1
    finally:
        subprocess.run(["umount", "-l", str(logs)], check=False)
    proc, base = launch_gateway(tmp_path, seeded_directory, upstream.url,
                                audit={"path": str(logs / "audit.jsonl")})
    try:
        async with aiohttp.ClientSession() as s:
            state = await probes(s, base)
            assert state["healthz"][0] == 200 and state["readyz"][0] == 200
    finally:
        stop_process(proc)


@pytest.mark.parametrize("victim", ["gateway", "worker"])
async def test_sigkill_under_a_burst_loses_no_intent(tmp_path, seeded_directory, upstream,
                                                     redis_prefix, victim) -> None:
    """SIGKILL of the gateway (or of one of two workers) under a burst of POSTs: every
    request the shop received has a durable request_intent line, by request id."""
    workers = 1 if victim == "gateway" else 2
    proc, base = launch_gateway(tmp_path, seeded_directory, upstream.url,
                                extra=("--workers", str(workers)),
                                sessions={"store": "redis", "redis_prefix": redis_prefix})
    try:
        await asyncio.sleep(0.5 * workers)  # every worker bound
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            await http_login(s, base, "buyer-alice")
            connector = aiohttp.TCPConnector(limit=40, force_close=True)
            async with aiohttp.ClientSession(cookie_jar=s.cookie_jar,
                                             connector=connector) as burst:

                async def one() -> int:
                    try:
                        return (await post(burst, f"{base}/cart/add"))[0]
                    except (TimeoutError, aiohttp.ClientError):
                        return 0

                tasks = [asyncio.create_task(one()) for _ in range(400)]
                while len(upstream.seen) < 60:
                    await asyncio.sleep(0.01)
                target = proc.pid if victim == "gateway" else worker_pids(proc.pid)[0]
                os.kill(target, signal.SIGKILL)
                statuses = await asyncio.gather(*tasks)
    finally:
        if proc.poll() is None:
            stop_process(proc)
    files = sorted(tmp_path.glob("audit*.jsonl"))
    lines = records(*files)
    intents = {r["request_id"] for r in lines if r["event"] == "request_intent"}
    outcomes = {r["request_id"] for r in lines if r["event"] == "request"}
    received = [x.header("X-Request-Id") for x in upstream.seen if x.method == "POST"]
    missing = [rid for rid in received if rid not in intents]
    print(f"\nSIGKILL {victim}: shop received {len(received)} POSTs, "
          f"{sum(1 for x in statuses if x == 200)} answered 200, {len(intents)} intent lines, "
          f"{len(outcomes & set(received))} outcome lines of forwarded requests, "
          f"{len(missing)} forwarded without a durable intent")
    assert received and missing == []
    for path in files:  # each worker's file is a chain of its own; a torn tail is no break
        assert not isinstance(verify_files([path]), Break), path
    assert not isinstance(verify_files(files), Break)
