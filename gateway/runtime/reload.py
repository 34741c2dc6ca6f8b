"""Policy hot reload: on file change, SIGHUP or admin call; audited; never leaves no policy."""

from __future__ import annotations

import asyncio
import logging

from gateway.policy import PolicyLoadError
from gateway.policy.engine import content_rev, policy_files
from gateway.runtime.gateway import Gateway

log = logging.getLogger("csr_gateway")
WATCH_SECONDS = 1.0


def reload_policy(gw: Gateway, trigger: str) -> bool:
    """Build a fresh engine, load, self-check (`?=`), then swap; on failure the old policy
    keeps serving, and the failure shows in the audit, readyz and metrics until a good
    load. Requests in flight finish on the snapshot they started with."""
    old = gw.policy.rev
    try:
        snapshot = gw.policy.reload()
    except PolicyLoadError as exc:
        gw.metrics.policy_reloads.labels("failed").inc()
        gw.metrics.policy_ok.set(0)
        gw.audit.emit("policy_reload_failed", reason="policy_invalid", policy_rev=old,
                      detail=exc.message, file=exc.file, line=exc.line, trigger=trigger)
        log.error("policy reload failed (%s), still serving %s: %s", trigger, old, exc)
        return False
    gw.metrics.policy_reloads.labels("ok").inc()
    gw.metrics.policy_ok.set(1)
    gw.audit.emit("policy_reload", reason="ok", policy_rev=snapshot.rev, trigger=trigger,
                  detail=f"{old} -> {snapshot.rev}" if old != snapshot.rev else
                  f"{old} (unchanged)")
    log.info("policy reloaded (%s): %s -> %s", trigger, old, snapshot.rev)
    return True


async def policy_watcher(gw: Gateway) -> None:
    """Poll the policy files' content hash. New content (not the serving policy, nor content
    that already failed) reloads; an editor still writing just reloads again next time."""
    failed: str | None = None
    while True:
        await asyncio.sleep(WATCH_SECONDS)
        try:
            now = content_rev(policy_files(gw.policy.directory))
        except OSError:
            continue
        if now == failed or (now == gw.policy.rev and gw.policy.last_error is None):
            continue  # back to the serving content after a failure: reload, clear the flag
        failed = None if reload_policy(gw, "file_change") else now
