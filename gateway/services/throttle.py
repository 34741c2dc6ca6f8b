"""Login throttling per user and per client address (sliding window, in memory)."""

from __future__ import annotations

import time
from collections import deque


class LoginThrottle:
    """After too many failures in `window` seconds for a user or an address: wait.

    The address limit is higher: many people can share one address (an office NAT).
    """

    def __init__(self, per_user: int = 10, per_address: int = 100,
                 window: float = 300.0) -> None:
        self.limits = {"u": per_user, "a": per_address}
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        found = self._failures.setdefault(key, deque())
        while found and now - found[0] > self.window:
            found.popleft()
        return found

    def retry_after(self, username: str, address: str) -> int:
        """Seconds to wait before another attempt (0: go ahead)."""
        now = time.monotonic()
        waits = [self.window - (now - q[0]) for key in (f"u:{username}", f"a:{address}")
                 if len(q := self._recent(key, now)) >= self.limits[key[0]]]
        return int(max(waits)) + 1 if waits else 0

    def failed(self, username: str, address: str) -> None:
        now = time.monotonic()
        for key in (f"u:{username}", f"a:{address}"):
            self._recent(key, now).append(now)
        if len(self._failures) > 100_000:
            self._failures.clear()

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"u:{username}", None)
