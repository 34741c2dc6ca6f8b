"""Tells the customer what a CSR did for them: a webhook after every impersonation.

The counting and the single closing of each impersonation are the ledger's (ledger.py);
the caller that closes one audits the end, and this module delivers the summary.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from gateway.core.domain import Impersonation
from gateway.services.ledger import Ledger, MemoryLedger, Tally

if TYPE_CHECKING:
    from gateway.services.assertion import AssertionSigner

log = logging.getLogger("csr_gateway")
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)  # seconds before attempts 2..5: bounded, doubling
ATTEMPT_TIMEOUT = 10.0
RETRYABLE = frozenset({408, 425, 429})


class Notifier:
    """Counts what each impersonation did and, once it is over, delivers the summary.

    Deliveries are tasks the notifier owns; shutdown waits for them (bounded), and one
    that is cut short is audited as failed.
    """

    def __init__(self, url: str | None, audit: Any, ledger: Ledger | None = None,
                 signer: AssertionSigner | None = None,
                 moments: tuple[str, ...] = ("end",)) -> None:
        self.url, self.audit, self.signer = url, audit, signer
        self.moments = moments  # impersonation.notify_on: start, end
        self.ledger: Ledger = ledger or MemoryLedger()
        self.tasks: set[asyncio.Task[None]] = set()

    def count(self, impersonation_id: str, change: dict[str, Any] | None) -> None:
        """One action of the buyer's, forwarded to the shop (`change`: a state-changing one)."""
        if self.url is not None:
            self.ledger.count(impersonation_id, change)

    async def ended(self, imp: Impersonation, company: str | None, why: str,
                    session: aiohttp.ClientSession | None) -> bool:
        """Close the impersonation once; True for the caller that did (it audits the end)."""
        try:
            tally = await self.ledger.close_out(imp.id)
        except Exception as exc:  # the end itself must not fail: audit it, without counts
            log.error("impersonation %s: ledger unavailable: %r", imp.id, exc)
            tally = Tally()
        if tally is None:
            return False
        if "end" in self.moments:
            self.tell(self.summary(imp, company, why, tally), session)
        return True

    def started(self, imp: Impersonation, company: str | None,
                session: aiohttp.ClientSession | None) -> None:
        """With `notify_on: [start, ...]` the company hears of a start as it happens."""
        if "start" in self.moments:
            self.tell({"event": "impersonation_started", "id": f"{imp.id}-start",
                       "impersonation_id": imp.id, "csr": imp.csr, "customer": imp.buyer,
                       "company": company, "started_at": round(imp.started_at, 3),
                       "reason": imp.reason}, session)

    def tell(self, message: dict[str, Any], session: aiohttp.ClientSession | None) -> None:
        """Deliver one message (an owned task, retried); `id` is its Idempotency-Key."""
        if self.url is None or session is None:
            return
        task = asyncio.get_running_loop().create_task(self._deliver(session, message))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    @staticmethod
    def summary(imp: Impersonation, company: str | None, why: str,
                tally: Tally) -> dict[str, Any]:
        return {"event": "impersonation_finished", "impersonation_id": imp.id,
                "csr": imp.csr, "customer": imp.buyer, "company": company,
                "started_at": round(imp.started_at, 3), "ended_at": round(time.time(), 3),
                "ended_by": why, "reason": imp.reason, "actions": tally.actions,
                "state_changing_actions": tally.changed}

    def signature(self, body: bytes) -> dict[str, str]:
        """The receiver checks X-Gateway-Signature with the gateway's JWKS."""
        if self.signer is None:
            return {}
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
        now = int(time.time())
        token = self.signer.encode({"iss": self.signer.settings.issuer,
                                    "aud": "impersonation-webhook", "iat": now,
                                    "exp": now + 600, "body_sha256": digest})
        return {"X-Gateway-Signature": token}

    async def _deliver(self, session: aiohttp.ClientSession, summary: dict[str, Any]) -> None:
        assert self.url is not None
        body = orjson.dumps(summary)
        key = summary.get("id") or summary["impersonation_id"]
        headers = {"Content-Type": "application/json", "Idempotency-Key": key,
                   **self.signature(body)}
        attempts, last = 0, "not tried"
        try:
            for delay in (0.0, *RETRY_DELAYS):
                await asyncio.sleep(delay)
                attempts += 1
                last, retry = await self._attempt(session, body, headers)
                if last == "delivered" or not retry:
                    break
        except asyncio.CancelledError:
            self._audit(summary, "notify_failed", attempts, "shutdown before delivery")
            raise
        self._audit(summary, "ok" if last == "delivered" else "notify_failed", attempts, last)

    async def _attempt(self, session: aiohttp.ClientSession, body: bytes,
                       headers: dict[str, str]) -> tuple[str, bool]:
        """One POST: (what happened, whether another attempt may help)."""
        assert self.url is not None
        try:
            async with session.post(self.url, data=body, headers=headers, allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT)) as resp:
                if resp.status < 300:
                    return "delivered", False
                return f"HTTP {resp.status}", resp.status >= 500 or resp.status in RETRYABLE
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return type(exc).__name__, True

    def _audit(self, summary: dict[str, Any], reason: str, attempts: int, detail: str) -> None:
        self.audit.emit("notification", user=summary.get("customer"),
                        actor=summary.get("csr"), csr=summary.get("csr"),
                        company=summary.get("company"), reason=reason, decision=None,
                        impersonation_id=summary.get("impersonation_id"),
                        impersonation_reason=summary.get("reason"), attempts=attempts,
                        actions=summary.get("actions"), message=summary["event"],
                        detail=detail)

    async def close(self) -> None:
        """Let deliveries in flight finish (bounded by their retries), then stop."""
        await self.ledger.settle()
        if self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait(set(self.tasks), timeout=15)
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.ledger.close()
