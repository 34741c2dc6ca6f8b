"""Server-side sessions: a random id in a cookie, the state in memory or in Redis."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from gateway.core.domain import Impersonation
from gateway.core.errors import ServiceUnavailable
from gateway.sessions.refresh_guard import RefreshGuard


@dataclass(frozen=True, slots=True)
class IdpLink:
    """The OpenID provider's side of a session: who it says this is, and how to ask again."""

    sub: str
    sid: str = ""
    refresh_token: str = ""
    id_token: str = ""  # the hint for RP-initiated logout
    checked_at: float = 0.0  # when the provider last confirmed the user and groups


@dataclass(frozen=True, slots=True)  # slots: ~200 bytes less for each of 10,000s
class Session:
    id: str
    username: str
    csrf_token: str
    created: float
    last_seen: float
    idle_minutes: int = 60
    client_ip: str = ""
    impersonation: Impersonation | None = None
    auth_method: str = "password"  # password, oidc or totp: how the person last proved it
    auth_time: float = 0.0  # when they last entered a password or the IdP saw them do so
    amr: tuple[str, ...] = ()  # RFC 8176 methods: the provider's, or the gateway's own
    acr: str = ""  # the provider's authentication context class, when it sent one
    idp: IdpLink | None = None

    def idle_expired(self, now: float) -> bool:
        return now - self.last_seen > self.idle_minutes * 60

    def to_json(self) -> bytes:
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Session:
        data: dict[str, Any] = orjson.loads(raw)
        imp = data.pop("impersonation", None)
        idp = data.pop("idp", None)
        data["amr"] = tuple(data.get("amr") or ())
        return cls(**data, impersonation=Impersonation(**imp) if imp else None,
                   idp=IdpLink(**idp) if idp else None)


def new_session(username: str, idle_minutes: int, client_ip: str,
                impersonation: Impersonation | None = None) -> Session:
    now = time.time()
    return Session(id=secrets.token_urlsafe(32), username=username,
                   csrf_token=secrets.token_urlsafe(32), created=now, last_seen=now,
                   idle_minutes=idle_minutes, client_ip=client_ip, impersonation=impersonation)


def rotated(session: Session, client_ip: str,
            impersonation: Impersonation | None = None) -> Session:
    """The same login under a new id and CSRF token (identity switches: no fixation)."""
    fresh = new_session(session.username, session.idle_minutes, client_ip, impersonation)
    return dataclasses.replace(session, id=fresh.id, csrf_token=fresh.csrf_token,
                               last_seen=fresh.last_seen, client_ip=client_ip,
                               impersonation=impersonation)


class SessionStore(Protocol):
    refresh_guard: RefreshGuard

    async def start(self) -> None: ...
    async def get(self, sid: str) -> Session | None: ...
    async def get_fresh(self, sid: str) -> Session | None: ...
    async def save(self, session: Session) -> None: ...
    async def refresh(self, session: Session) -> bool: ...
    async def swap(self, old: Session, new: Session) -> Session | None: ...
    async def delete(self, sid: str) -> None: ...
    async def all(self) -> list[Session]: ...
    async def close(self) -> None: ...


CHANGE_ATTEMPTS = 5


async def update(store: SessionStore, session: Session,
                 change: Callable[[Session], Session]) -> Session | None:
    """Apply `change` to the stored session, never over a newer one: a request holding an
    old copy (a mode switch, a refreshed provider token, a touch) cannot write it back over
    what another request or worker wrote meanwhile; the change is made again on the newer
    session instead. None: the session was ended meanwhile."""
    current = session
    for _attempt in range(CHANGE_ATTEMPTS):
        new = change(current)
        stored = await store.swap(current, new)
        if stored is None or stored is new:
            return stored
        current = stored
    raise ServiceUnavailable("session_store_unavailable", detail="session changed too often")


TOUCH_EVERY = 15.0  # seconds: last_seen is written at most this often per session


def touched(session: Session, now: float) -> Session | None:
    """A copy with a fresh last_seen when the stored one is stale enough to rewrite."""
    if now - session.last_seen < TOUCH_EVERY:
        return None
    return dataclasses.replace(session, last_seen=now)


class MemorySessions:
    """One process only: fine for the demo and a single replica."""

    def __init__(self) -> None:
        self._data: dict[str, Session] = {}
        self.refresh_guard = RefreshGuard()

    async def start(self) -> None:
        return None

    async def get(self, sid: str) -> Session | None:
        return self._data.get(sid)

    async def get_fresh(self, sid: str) -> Session | None:
        return self._data.get(sid)

    async def save(self, session: Session) -> None:
        self._data[session.id] = session

    async def refresh(self, session: Session) -> bool:
        """Rewrite a session that still exists (False: it was ended meanwhile)."""
        if session.id not in self._data:
            return False
        self._data[session.id] = session
        return True

    async def swap(self, old: Session, new: Session) -> Session | None:
        """Write `new` only if `old` is what is stored; else the stored one (None: gone)."""
        current = self._data.get(old.id)
        if current is None or current != old:
            return current
        self._data[old.id] = new
        return new

    async def delete(self, sid: str) -> None:
        self._data.pop(sid, None)

    async def all(self) -> list[Session]:
        return list(self._data.values())

    async def close(self) -> None:
        self._data.clear()
