"""What the gateway adds to HTML pages: the impersonation banner or the CSR toolbar."""

from __future__ import annotations

import time

from gateway.context import RequestContext
from gateway.domain import Actor
from gateway.state import Gateway


def page_overlay(gw: Gateway, ctx: RequestContext, actor: Actor | None) -> bytes | None:
    """What goes before </body> of HTML pages: the impersonation banner while acting for a
    buyer; for a CSR acting as themselves, a bar with "Log in as buyer"; else nothing."""
    if actor is None:
        return None
    if actor.acting_as is not None:
        return render_banner(gw, ctx)
    select_user = gw.settings.pages.get("select_user")
    if select_user is None or not gw.policy.page(actor, "view", select_user,
                                                  gw.directory.snapshot).allowed:
        return None
    return gw.templates.get_template("csr_toolbar.html").render(csr=actor.user).encode()


def render_banner(gw: Gateway, ctx: RequestContext) -> bytes:
    actor, session = ctx.actor, ctx.session
    assert actor is not None and actor.acting_as is not None and session is not None
    imp = actor.impersonation
    assert imp is not None
    left = gw.settings.impersonation.max_minutes * 60 - (time.time() - imp.started_at)
    return gw.templates.get_template("banner.html").render(
        buyer=actor.acting_as, company=gw.directory.snapshot.company_name(actor.acting_as.company),
        csr=actor.user, csrf_token=session.csrf_token, minutes_left=max(0, int(left // 60)),
        impersonation=imp).encode()
