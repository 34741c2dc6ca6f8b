"""The one verdict on a request to the shop, asked alike by the proxy, the forward-auth
endpoint and the policy authors' tools, so the three can never disagree."""

from __future__ import annotations

from gateway.core.domain import Actor, DirectorySnapshot, Page
from gateway.policy.decision import Decision
from gateway.policy.engine import PolicyEngine

PUBLIC_PAGE = "public_page"


def decide(engine: PolicyEngine, directory: DirectorySnapshot, actor: Actor | None,
           page: Page, action: str) -> Decision:
    """A CSR acting for a buyer must still be allowed to (assignment, status, group), on
    every page; public pages then pass; anyone else needs an identity and the page's rule."""
    if actor is not None and actor.acting_as is not None:
        still = engine.impersonation(actor.alone(), actor.acting_as, directory)
        if not still.allowed:
            return still
    if page.public:
        return Decision(True, PUBLIC_PAGE, engine.rev)
    if actor is None:
        return Decision(False, "unauthenticated", engine.rev)
    return engine.page(actor, action, page, directory)
