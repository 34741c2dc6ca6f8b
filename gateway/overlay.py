"""What the gateway adds to HTML pages: the impersonation banner or the CSR toolbar."""

from __future__ import annotations

import time
from typing import Any

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
    return _rendered(gw, "csr_toolbar.html", (actor.user.display_name,), csr=actor.user)


def render_banner(gw: Gateway, ctx: RequestContext) -> bytes:
    actor, session = ctx.actor, ctx.session
    assert actor is not None and actor.acting_as is not None and session is not None
    imp = actor.impersonation
    assert imp is not None
    left = gw.settings.impersonation.max_minutes * 60 - (time.time() - imp.started_at)
    buyer, minutes_left = actor.acting_as, max(0, int(left // 60))
    company = gw.directory.snapshot.company_name(buyer.company)
    key = (imp.id, imp.reason, session.csrf_token, buyer.display_name, company,
           actor.user.username, minutes_left)
    return _rendered(gw, "banner.html", key, buyer=buyer, company=company, csr=actor.user,
                     csrf_token=session.csrf_token, minutes_left=minutes_left,
                     impersonation=imp)


RENDERED_LIMIT = 4096


def _rendered(gw: Gateway, template: str, key: tuple[Any, ...], **values: Any) -> bytes:
    """Every page of an impersonation carries the same banner until a minute passes: it is
    rendered once (~25 us through jinja2) and then served from here. `key` holds every value
    the template shows."""
    full, cache = (template, *key), gw.overlays
    found = cache.get(full)
    if found is None:
        if len(cache) >= RENDERED_LIMIT:
            cache.clear()
        found = cache[full] = gw.templates.get_template(template).render(**values).encode()
    return found
