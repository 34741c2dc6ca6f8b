"""The admin area: JSON API under /_gateway/api/ and HTML pages under /_gateway/admin/."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Registers the admin API and pages (filled in by the admin area)."""
