"""Authorize: the policy's verdict on the routed request, recorded for the audit line."""

from __future__ import annotations

from gateway.core.domain import Actor, DirectorySnapshot, Page
from gateway.core.errors import Forbidden
from gateway.policy.decide import decide
from gateway.policy.decision import Decision
from gateway.policy.engine import PolicyEngine
from gateway.runtime.context import RequestContext


def authorize(ctx: RequestContext, policy: PolicyEngine, directory: DirectorySnapshot,
              actor: Actor | None, page: Page, action: str) -> Decision:
    """Allowed: the decision is the line's. Refused: 403 with the policy's reason."""
    decision = decide(policy, directory, actor, page, action)
    if not decision.allowed:
        ctx.deny(decision.reason, decision.policy_rev)
        raise Forbidden(decision.reason)
    ctx.allow(decision.policy_rev, decision.reason)
    return decision
