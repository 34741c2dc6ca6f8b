"""Read-only stage: while a CSR acts read-only, no state-changing request goes on."""

from __future__ import annotations

from gateway.core.domain import Actor
from gateway.runtime.context import RequestContext
from gateway.runtime.impersonation_mode import ReadOnlyImpersonation, refused


def refuse_writes(ctx: RequestContext, actor: Actor | None) -> None:
    """After the policy allowed the page, for the proxy and forward-auth alike: a
    state-changing route (`ctx.state_changing`) is 403 `read_only_impersonation`."""
    if refused(actor, ctx.state_changing):
        ctx.deny(ReadOnlyImpersonation.reason, ctx.policy_rev)
        raise ReadOnlyImpersonation(detail=f"{ctx.method} {ctx.path}")
