"""How a command answers a start-up failure: one line naming the cause, never a traceback."""

from __future__ import annotations

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
