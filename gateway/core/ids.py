"""Identifiers a request carries (its id, its trace and span ids): random, unique, cheap.

Every request needs three of them, and `secrets.token_hex` asks the kernel for each
(a `getrandom` system call). Here they are cut from a buffer of the same kernel randomness
drawn 4 KiB at a time. A forked worker starts with an empty buffer, so no two processes
ever hand out the same bytes. These ids are not secrets: session ids, CSRF tokens and
anything else that guards access keep coming from `secrets` directly.
"""

from __future__ import annotations

import os

_DRAW = 4096


class _Pool:
    def __init__(self) -> None:
        self.hex, self.at = "", 0

    def take(self, nbytes: int) -> str:
        size = 2 * nbytes
        if nbytes > _DRAW:
            return os.urandom(nbytes).hex()
        end = self.at + size
        if end > len(self.hex):
            self.hex, self.at, end = os.urandom(_DRAW).hex(), 0, size
        found = self.hex[self.at:end]
        self.at = end
        return found

    def forget(self) -> None:
        self.hex, self.at = "", 0


_POOL = _Pool()
os.register_at_fork(after_in_child=_POOL.forget)


def token_hex(nbytes: int) -> str:
    """`nbytes` random bytes as hex, like `secrets.token_hex`; for ids, not for secrets."""
    return _POOL.take(nbytes)
