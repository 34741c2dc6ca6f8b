"""Tells the customer what a CSR did for them: a webhook after every impersonation."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from gateway.context import RequestContext
from gateway.domain import Impersonation

RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)  # seconds between attempts: five attempts in all
KEEP_ACTIONS = 200


@dataclass
class Tally:
    actions: int = 0
    changed: list[dict[str, Any]] = field(default_factory=list)


class Notifier:
    """Counts the actions of running impersonations and delivers a summary when they end.

    Counts live in this process (with several replicas, each reports what it served).
    Deliveries are tasks the notifier owns and awaits on shutdown.
    """

    def __init__(self, url: str | None, audit: Any) -> None:
        self.url, self.audit = url, audit
        self.tallies: dict[str, Tally] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def record(self, ctx: RequestContext, status: int) -> None:
        imp = ctx.actor.impersonation if ctx.actor and ctx.actor.acting_as else None
        if self.url is None or imp is None or (ctx.path or "").startswith("/_gateway/"):
            return  # the gateway's own pages are not actions in the shop
        tally = self.tallies.setdefault(imp.id, Tally())
        tally.actions += 1
        if ctx.state_changing and len(tally.changed) < KEEP_ACTIONS:
            tally.changed.append({"method": ctx.method, "path": ctx.path, "status": status,
                                  "at": time.time()})

    def finished(self, imp: Impersonation, company: str | None, reason: str,
                 session: aiohttp.ClientSession | None) -> None:
        tally = self.tallies.pop(imp.id, Tally())
        if self.url is None or session is None:
            return
        summary = {"event": "impersonation_finished", "impersonation_id": imp.id,
                   "csr": imp.csr, "customer": imp.buyer, "company": company,
                   "started_at": imp.started_at, "ended_at": time.time(), "ended_by": reason,
                   "reason": imp.reason, "actions": tally.actions,
                   "state_changing_actions": tally.changed}
        task = asyncio.get_running_loop().create_task(self._deliver(session, summary))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, session: aiohttp.ClientSession, summary: dict[str, Any]) -> None:
        assert self.url is not None
        last = "not tried"
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS), start=1):
            await asyncio.sleep(delay)
            try:
                async with session.post(self.url, json=summary,
                                        timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    if resp.status < 300:
                        self._audit(summary, "ok", attempt)
                        return
                    last = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = type(exc).__name__
        self._audit(summary, "notify_failed", len(RETRY_DELAYS) + 1, last)

    def _audit(self, summary: dict[str, Any], reason: str, attempts: int,
               detail: str = "delivered") -> None:
        self.audit.emit("notification", user=summary["customer"], actor=summary["csr"],
                        csr=summary["csr"], company=summary["company"], reason=reason,
                        decision=None, impersonation_id=summary["impersonation_id"],
                        impersonation_reason=summary["reason"], attempts=attempts,
                        actions=summary["actions"], detail=detail)

    async def close(self) -> None:
        """Let deliveries in flight finish (bounded by their retries), then stop."""
        if self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait(self.tasks, timeout=15)
        for task in self.tasks:
            task.cancel()
