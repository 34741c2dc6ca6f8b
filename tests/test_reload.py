"""Policy hot reload: validated in a fresh engine, swapped atomically, never left broken."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from gateway.reload import reload_policy
from tests.conftest import (
    ROOT,
    audit_lines,
    free_port,
    gw_of,
    login,
    start_gateway_process,
    stop_process,
    write_config,
)


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
    client = await make_gateway(policies_dir=policy_dir)
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


async def test_sighup_and_file_watch_reload_a_running_gateway(tmp_path, seeded_directory,
                                                             policy_dir, upstream) -> None:
    """A real `csr-gateway run`: SIGHUP reloads, and so does editing a watched file."""
    shutil.copyfile(seeded_directory, tmp_path / "directory.sqlite3")
    port = free_port()
    config = write_config(tmp_path, upstream.url, port, policies_dir=str(policy_dir),
                          watch_policies=True, audit={"fsync": "always"})
    proc = start_gateway_process(config, port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            first = (await (await session.get(f"{base}/_gateway/readyz")).json())["policy_rev"]
            edit(policy_dir, "# Self-checks", "# Self-checks (edited)")
            proc.send_signal(signal.SIGHUP)
            second = await _wait_rev(session, base, first)
            edit(policy_dir, "# Self-checks (edited)", "# Self-checks (edited twice)")
            third = await _wait_rev(session, base, second)
        assert len({first, second, third}) == 3
    finally:
        stop_process(proc)


async def _wait_rev(session: aiohttp.ClientSession, base: str, old: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rev = (await (await session.get(f"{base}/_gateway/readyz")).json())["policy_rev"]
        if rev != old:
            return str(rev)
        await asyncio.sleep(0.2)
    raise AssertionError("policy was not reloaded")
