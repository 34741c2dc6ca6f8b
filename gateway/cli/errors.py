"""How a command answers a start-up failure: one line naming the cause, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.core.settings import Settings

from gateway.policy import PolicyLoadError
from gateway.services.assertion import KeyFileError


def startup_errors() -> tuple[type[BaseException], ...]:
    # each command loads only what it runs: `--help` and the tools stay light
    from sqlalchemy.exc import SQLAlchemyError

    return (OSError, KeyFileError, PolicyLoadError, SQLAlchemyError)
    # a port in use, an unwritable folder, a bad key, a policy or database that cannot load


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def settings_or_report(path: str | Path) -> Settings | None:
    """The configuration, or None once every problem (file:line key: message) is printed."""
    # the loader only for the commands that read a configuration
    from gateway.config.load import ConfigError, load_settings

    try:
        return load_settings(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
