"""Rendering the shop's pages: the templates, the shopper behind a request, redirects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from gateway.demo.trust import Shopper

HERE = Path(__file__).parent
WHO = web.RequestKey("who", Shopper)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def templates() -> jinja2.Environment:
    """The page templates, autoescaped."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                              autoescape=True)


def shopper(request: web.Request) -> Shopper:
    """Who the shop believes is asking (set by the trust middleware)."""
    return request[WHO]


def render(request: web.Request, template: str, status: int = 200,
           **values: Any) -> web.Response:
    """A page with the header strip saying who the shop thinks you are."""
    html = request.app[TEMPLATES].get_template(template).render(
        who=request[WHO], path=request.path, **values)
    return web.Response(text=html, status=status, content_type="text/html")


def see_other(location: str) -> web.Response:
    """The 303 every form post answers with."""
    return web.Response(status=303, headers={"Location": location})


async def form(request: web.Request) -> dict[str, str]:
    """The posted form's text fields (files and repeats ignored)."""
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
