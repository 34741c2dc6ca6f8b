"""How many of `run --workers N`'s processes are alive, shared by the master with each one.

The master writes the counts into shared memory made before it forks; every worker reads
them for readyz and /metrics. With a single process (no master) there is nothing to share.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

_shared: Any = None  # [configured, alive], a RawArray inherited by every forked worker


def share(configured: int) -> None:
    """In the master, before the first fork."""
    global _shared
    _shared = multiprocessing.get_context("fork").RawArray("i", [configured, 0])


def set_alive(alive: int) -> None:
    if _shared is not None:
        _shared[1] = alive


def counts() -> tuple[int, int] | None:
    """(alive, configured), or None when this process is not a supervised worker."""
    if _shared is None:
        return None
    return int(_shared[1]), int(_shared[0])
