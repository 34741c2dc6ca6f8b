"""Decision cache keys: facts ids of the people asked about, so a change misses exactly for
the people it touches and everyone else's decisions stay cached."""

from __future__ import annotations

from typing import Any

from gateway.core.domain import DirectorySnapshot, User
from gateway.policy.decision import Decision

CACHE_LIMIT = 200_000
Key = tuple[Any, ...]


def facts_id(user: User, directory: DirectorySnapshot | None) -> int:
    """The facts id of a user taken from this very snapshot (0: not from it, don't cache)."""
    if directory is None or directory.users.get(user.username) is not user:
        return 0
    return directory.facts.get(user.username, 0)


def decision_key(kind: str, directory: DirectorySnapshot | None, *people_then_rest: Any
                 ) -> Key | None:
    """A key built from facts ids: a change in anything the policy reads about these people
    (or their companies) gives a new id and misses; other users' changes do not. None when
    an id is unknown: then the question is asked every time."""
    key: list[Any] = [kind]
    for item in people_then_rest:
        if isinstance(item, User):
            found = facts_id(item, directory)
            if not found:
                return None
            key.append(found)
        else:
            key.append(item)
    return tuple(key)


def remember(cache: dict[Key, Decision], key: Key | None, decision: Decision) -> None:
    if key is None or decision.reason == "policy_error":
        return  # never cache a failure: the next request asks again
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = decision
