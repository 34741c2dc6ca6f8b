"""Policy hot reload: validated in a fresh engine, swapped atomically, never left broken."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from gateway.runtime.reload import reload_policy
from tests.support.gateway import ROOT, audit_lines, gw_of, login
from tests.support.processes import start_gateway_process, stop_process, write_config
from tests.support.services import free_port


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", target)
    return target


def edit(policy_dir: Path, old: str, new: str) -> None:
    path = policy_dir / "pages.polar"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


async def test_good_change_is_swapped_in(make_gateway, policy_dir) -> None:
    """Taking Reports from the CSR group: reload swaps the rev and the decision changes."""
    client = await make_gateway(policies_dir=policy_dir)
    gw = gw_of(client)
    await login(client, "csr-carol")
    assert (await client.get("/reports")).status == 200
    old = gw.policy.rev
    edit(policy_dir, 'grant("CSR", "reports", "view");', "")
    assert reload_policy(gw, "test")
    assert gw.policy.rev != old
    assert (await client.get("/reports")).status == 403
    line = [r for r in audit_lines(client) if r["event"] == "policy_reload"][-1]
    assert line["policy_rev"] == gw.policy.rev and line["trigger"] == "test"


BROKEN = {
    "syntax-error": ('grant("CSR", "reports", "view");', 'grant("CSR", "reports" "view");',
                     "pages.polar"),
    "failing-assertion": ('grant("CSR", "select_user", "*");', "", "pages.polar"),
    "unregistered-class": ("page_access(false, actor, action, page) if",
                           "page_access(false, actor: Customer, action, page) if",
                           "pages.polar"),
}


@pytest.mark.parametrize("name", list(BROKEN))
async def test_broken_policy_keeps_the_old_one_serving(make_gateway, policy_dir, name) -> None:
    """A broken file leaves the old policy serving, is audited with file and line, and shows
    in readyz and metrics."""
    client = await make_gateway(policies_dir=policy_dir)
    gw = gw_of(client)
    await login(client, "csr-carol")
    old = gw.policy.rev
    before, after, file = BROKEN[name]
    edit(policy_dir, before, after)
    assert not reload_policy(gw, "test")
    assert gw.policy.rev == old
    assert (await client.get("/reports")).status == 200
    failed = [r for r in audit_lines(client) if r["event"] == "policy_reload_failed"][-1]
    assert failed["policy_rev"] == old and failed["reason"] == "policy_invalid"
    assert failed["detail"]
    assert failed["file"].endswith(file) and failed["line"] > 0
    ready = await (await client.get("/_gateway/readyz")).json()
    assert ready["degraded"] is True and "last reload failed" in ready["checks"]["policy"]
    metrics = await (await client.get("/_gateway/metrics")).text()
    assert "csrgw_policy_loaded_ok 0.0" in metrics
    assert 'csrgw_policy_reloads_total{result="failed"} 1.0' in metrics


async def test_no_request_dropped_during_reloads(make_gateway, policy_dir) -> None:
    """Requests in flight while the policy is swapped twenty times are all answered."""
    # one session sends all 200 at once: above its fair share of the shop otherwise
    client = await make_gateway(policies_dir=policy_dir, upstream={"max_per_session": 200})
    gw = gw_of(client)
    await login(client, "buyer-alice")

    async def swapper() -> None:
        for i in range(20):
            edit(policy_dir, "# Self-checks", f"# Self-checks {i}") if i == 0 else \
                edit(policy_dir, f"# Self-checks {i - 1}", f"# Self-checks {i}")
            reload_policy(gw, "test")
            await asyncio.sleep(0.01)

    results = await asyncio.gather(swapper(), *(client.get("/cart") for _ in range(200)))
    assert [r.status for r in results[1:]] == [200] * 200


async def test_sighup_reloads_a_running_gateway(tmp_path, seeded_directory, policy_dir,
                                               upstream) -> None:
    """A real `csr-gateway run` (no file watch): SIGHUP swaps in an edited policy, and a
    broken one leaves the old serving, visible in readyz and the audit file."""
    shutil.copyfile(seeded_directory, tmp_path / "directory.sqlite3")
    port = free_port()
    config = write_config(tmp_path, upstream.url, port, policies_dir=str(policy_dir),
                          watch_policies=False, audit={"fsync": "always"})
    proc = start_gateway_process(config, port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            first = (await (await session.get(f"{base}/_gateway/readyz")).json())["policy_rev"]
            edit(policy_dir, "# Self-checks", "# Self-checks (edited)")
            proc.send_signal(signal.SIGHUP)
            second = await _wait_rev(session, base, first)
            edit(policy_dir, 'grant("CSR", "reports", "view");', 'grant("CSR" "reports");')
            proc.send_signal(signal.SIGHUP)
            ready = await _wait_degraded(session, base)
        assert ready["policy_rev"] == second and ready["ready"] is True
        lines = [orjson.loads(line) for line in (tmp_path / "audit.jsonl").read_bytes().split(
            b"\n") if line.strip()]
        reload = [r for r in lines if r["event"] == "policy_reload"][-1]
        assert reload["trigger"] == "sighup" and reload["policy_rev"] == second
        failed = [r for r in lines if r["event"] == "policy_reload_failed"][-1]
        assert failed["trigger"] == "sighup" and failed["file"].endswith("pages.polar")
        assert failed["line"] > 0 and failed["policy_rev"] == second
    finally:
        stop_process(proc)


async def test_watcher_reloads_edits_and_reports_broken_files(make_gateway, policy_dir,
                                                              monkeypatch) -> None:
    """The file watcher: an edit reloads once; a broken save is reported once and keeps the
    old policy; the fix reloads and clears readyz and metrics."""
    import gateway.runtime.reload as reload_module

    monkeypatch.setattr(reload_module, "WATCH_SECONDS", 0.05)
    client = await make_gateway(policies_dir=policy_dir)
    gw = gw_of(client)
    watcher = asyncio.create_task(reload_module.policy_watcher(gw))
    try:
        await _watch(client, gw, policy_dir)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def _watch(client, gw, policy_dir: Path) -> None:
    first = gw.policy.rev
    edit(policy_dir, "# Self-checks", "# Self-checks (edited)")
    await _until(lambda: gw.policy.rev != first)
    second = gw.policy.rev
    edit(policy_dir, 'grant("CSR", "reports", "view");', 'grant("CSR" "reports");')
    await _until(lambda: gw.policy.last_error is not None)
    await asyncio.sleep(0.3)  # more polls of the same broken content: reported once
    assert gw.policy.rev == second
    ready = await (await client.get("/_gateway/readyz")).json()
    assert ready["degraded"] is True and "pages.polar" in ready["checks"]["policy"]
    edit(policy_dir, 'grant("CSR" "reports");', 'grant("CSR", "reports", "view");')
    await _until(lambda: gw.policy.last_error is None)
    assert gw.policy.rev == second  # the fixed file is the serving content again
    ready = await (await client.get("/_gateway/readyz")).json()
    assert ready["degraded"] is False and ready["checks"]["policy"] == "ok"
    assert "csrgw_policy_loaded_ok 1.0" in await (await client.get("/_gateway/metrics")).text()
    events = [(r["event"], r.get("trigger")) for r in audit_lines(client)
              if r["event"].startswith("policy_reload")]
    assert events == [("policy_reload", "file_change"), ("policy_reload_failed", "file_change"),
                      ("policy_reload", "file_change")]


async def test_every_decision_records_the_policy_rev(make_gateway, policy_dir) -> None:
    """Each request's audit line names the policy that decided it, before and after a swap."""
    client = await make_gateway(policies_dir=policy_dir)
    gw = gw_of(client)
    await login(client, "csr-carol")
    first = gw.policy.rev
    assert (await client.get("/reports")).status == 200
    edit(policy_dir, 'grant("CSR", "reports", "view");', "")
    assert reload_policy(gw, "test")
    assert (await client.get("/reports")).status == 403
    requests = [r for r in audit_lines(client) if r["event"] == "request"]
    assert [(r["decision"], r["policy_rev"]) for r in requests[-2:]] == [
        ("allow", first), ("deny", gw.policy.rev)]


async def _until(condition, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def _wait_degraded(session: aiohttp.ClientSession, base: str) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ready = await (await session.get(f"{base}/_gateway/readyz")).json()
        if ready["degraded"]:
            return dict(ready)
        await asyncio.sleep(0.2)
    raise AssertionError("the failed reload did not show in readyz")


async def _wait_rev(session: aiohttp.ClientSession, base: str, old: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rev = (await (await session.get(f"{base}/_gateway/readyz")).json())["policy_rev"]
        if rev != old:
            return str(rev)
        await asyncio.sleep(0.2)
    raise AssertionError("policy was not reloaded")
