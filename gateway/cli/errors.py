"""How a command answers a start-up failure: one line naming the cause, never a traceback."""

from __future__ import annotations


def startup_errors() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.policy import PolicyLoadError
    from gateway.services.assertion import KeyFileError

    return (OSError, KeyFileError, PolicyLoadError, SQLAlchemyError)
    # a port in use, an unwritable folder, a bad key, a policy or database that cannot load


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
