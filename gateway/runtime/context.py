"""Per-request facts, bound stage by stage and written as one audit line at the end."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.core import ids
from gateway.core.domain import Actor
from gateway.request.tracecontext import TraceContext
from gateway.sessions.store import Session


@dataclass(slots=True)
class RequestContext:
    method: str
    client_ip: str
    request_id: str = field(default_factory=lambda: ids.token_hex(12))
    started: float = field(default_factory=time.perf_counter)
    path: str | None = None
    query: str = ""
    page: str | None = None
    action: str | None = None
    decision: str | None = None
    reason: str | None = None
    policy_rev: str | None = None
    actor: Actor | None = None
    session: Session | None = None
    switched_session: Session | None = None  # identity switched: new cookie on the response
    state_changing: bool | None = None
    outcome: str = "completed"
    bytes_sent: int | None = None
    audited: bool = False  # a gateway page that writes its own event line sets this
    extra: dict[str, Any] = field(default_factory=dict)
    trace: TraceContext | None = None

    def allow(self, policy_rev: str, reason: str = "ok") -> None:
        self.decision, self.reason, self.policy_rev = "allow", reason, policy_rev

    def deny(self, reason: str, policy_rev: str | None = None) -> None:
        self.decision, self.reason = "deny", reason
        self.policy_rev = policy_rev or self.policy_rev

    def identity_fields(self) -> dict[str, Any]:
        """user / actor / csr / company / impersonation keys for any audit line."""
        actor = self.actor
        if actor is None:
            return {"user": None, "actor": None, "csr": None, "company": None,
                    "impersonation_id": None, "impersonation_reason": None,
                    "impersonation_mode": None}
        imp = actor.impersonation if actor.acting_as else None
        return {
            "user": actor.effective.username, "actor": actor.user.username,
            "csr": actor.user.username if imp else None, "company": actor.effective.company,
            "impersonation_id": imp.id if imp else None,
            "impersonation_reason": imp.reason if imp else None,
            "impersonation_mode": imp.mode if imp else None,
        }

    def intent_fields(self) -> dict[str, Any]:
        """Who, as whom, what and the decision: the line written before forwarding."""
        fields = self.audit_fields(0)
        for key in ("status", "duration_ms", "outcome", "bytes_sent"):
            del fields[key]
        return fields

    def audit_fields(self, status: int) -> dict[str, Any]:
        path = self.path if self.path is not None else None
        if path is not None and self.query:
            path = f"{path}?{self.query}"
        return {
            "request_id": self.request_id, **self.identity_fields(), "method": self.method,
            "path": path, "page": self.page, "action": self.action,
            "decision": self.decision, "reason": self.reason, "status": status,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "client_ip": self.client_ip, "policy_rev": self.policy_rev,
            "outcome": self.outcome, "bytes_sent": self.bytes_sent,
            "state_changing": self.state_changing,
            "trace_id": self.trace.trace_id if self.trace else None, **self.extra,
        }


CTX = web.RequestKey("csrgw_ctx", RequestContext)
