"""The admin area: JSON API under /_gateway/api/ and HTML pages under /_gateway/admin/."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Registers the admin API and the admin pages."""
    from gateway.web.admin import api, approvals, pages

    approvals.add_routes(app)
    api.add_routes(app)
    pages.add_routes(app)
