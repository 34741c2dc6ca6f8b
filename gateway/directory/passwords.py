"""The directory's argon2 password hashing, at the cost the configuration sets.

The defaults are argon2-cffi's (RFC 9106's second recommendation: 3 passes over 64 MiB,
4 lanes). A test configuration may set a lower cost so that logins are cheap; `check`
warns about a cost below OWASP's minimum, and the product's defaults never change for it.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.core.settings import DirectorySettings

# OWASP's floor for argon2id: below it, `check` warns.
MIN_MEMORY_KIB, MIN_TIME_COST = 19_456, 2


@functools.cache
def hasher(time_cost: int = 3, memory_kib: int = 65_536, parallelism: int = 4) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def hasher_for(settings: DirectorySettings) -> PasswordHasher:
    return hasher(settings.password_time_cost, settings.password_memory_kib,
                  settings.password_parallelism)


HASHER = hasher()


@functools.cache
def _dummy_hash(chosen: PasswordHasher) -> str:
    """Made on first need, in the worker thread: at import it would take argon2's memory
    cost from every process at start, including those that never see a login."""
    return chosen.hash("not-a-real-password")


def verify(chosen: PasswordHasher, stored: str | None, password: str) -> bool:
    """Unknown users are checked against a dummy hash: they cost what known ones cost."""
    try:
        return chosen.verify(stored or _dummy_hash(chosen), password)
    except (VerificationError, InvalidHashError):
        return False
