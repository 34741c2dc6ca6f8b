"""Policy hot reload: on file change, SIGHUP or admin call; audited; never leaves no policy."""

from __future__ import annotations

import asyncio
import logging

from gateway.policy import PolicyLoadError
from gateway.state import Gateway

log = logging.getLogger("csr_gateway")
WATCH_SECONDS = 1.0


def reload_policy(gw: Gateway, trigger: str) -> bool:
    """Build, self-check and swap; on failure the old policy keeps serving."""
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
                  detail=f"{old} -> {snapshot.rev}")
    log.info("policy reloaded (%s): %s -> %s", trigger, old, snapshot.rev)
    return True


async def policy_watcher(gw: Gateway) -> None:
    """Poll the policy files' content hash; a change (or a fixed broken file) reloads."""
    seen = gw.policy.rev
    while True:
        await asyncio.sleep(WATCH_SECONDS)
        try:
            from gateway.policy.engine import content_rev, policy_files
            now = content_rev(policy_files(gw.policy.directory))
        except OSError:
            continue
        if now != seen:
            seen = now
            reload_policy(gw, "file_change")
