"""Where the package's own page templates and static files are, wherever it is installed."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"
LOCALE = PACKAGE / "locale"  # message catalogues: <lang>/LC_MESSAGES/messages.{po,mo}
