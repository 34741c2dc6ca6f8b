"""The admin area: JSON API under /_gateway/api/ and HTML pages under /_gateway/admin/."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Registers the admin API and the admin html."""
    # the admin pages load with the app, not with this package's import
    from gateway.web.admin import api, approvals, html

    approvals.add_routes(app)
    api.add_routes(app)
    html.add_routes(app)
