"""What the gateway adds to HTML pages: the impersonation banner or the CSR toolbar."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from gateway.core import i18n
from gateway.core.domain import Actor
from gateway.runtime.context import RequestContext
from gateway.runtime.gateway import Gateway


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
    return rendered_once(gw, ("csr_toolbar.html", actor.user.display_name, i18n.language()),
                         lambda: _render(gw, "csr_toolbar.html", csr=actor.user))


def render_banner(gw: Gateway, ctx: RequestContext) -> bytes:
    actor, session = ctx.actor, ctx.session
    assert actor is not None and actor.acting_as is not None and session is not None
    imp = actor.impersonation
    assert imp is not None
    left = gw.settings.impersonation.max_minutes * 60 - (time.time() - imp.started_at)
    buyer, minutes_left = actor.acting_as, max(0, int(left // 60))
    company = gw.directory.snapshot.company_name(buyer.company)
    key = ("banner.html", imp.id, imp.reason, session.csrf_token, buyer.display_name, company,
           actor.user.username, minutes_left, i18n.language())
    return rendered_once(gw, key, lambda: _render(
        gw, "banner.html", buyer=buyer, company=company, csr=actor.user,
        csrf_token=session.csrf_token, minutes_left=minutes_left, impersonation=imp))


RENDERED_LIMIT = 4096
T = TypeVar("T")


def rendered_once(gw: Gateway, key: tuple[Any, ...], render: Callable[[], T]) -> T:
    """Pages that repeat (every page of an impersonation carries the same banner until a
    minute passes; an error page differs only by who asks and why) are rendered once
    (jinja2 costs more than the lookup; docs/performance.md) and then served from here.
    `key` names the template and holds every value it shows."""
    found: T | None = gw.rendered.get(key)
    if found is None:
        if len(gw.rendered) >= RENDERED_LIMIT:
            gw.rendered.clear()
        found = gw.rendered[key] = render()
    return found


def _render(gw: Gateway, template: str, **values: Any) -> bytes:
    return gw.templates.get_template(template).render(**values).encode()
