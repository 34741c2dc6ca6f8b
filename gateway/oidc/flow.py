"""One sign-in round trip: its state, nonce and PKCE verifier in a signed cookie, used once."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import orjson

from gateway.core.settings import Settings

if TYPE_CHECKING:
    from joserfc.jwk import OctKey

COOKIE = "csrgw_oidc"
COOKIE_PATH = "/_gateway/oidc/"
LIFETIME = 600  # seconds a user may spend at the provider's login page


@dataclass(frozen=True)
class Flow:
    state: str
    nonce: str
    verifier: str
    next: str
    started: float
    purpose: str = "login"  # or step_up: continue an impersonation start afterwards
    buyer: str = ""
    reason: str = ""
    return_to: str = ""
    mfa: bool = False  # the policy asks for a second factor for this start


def _key(settings: Settings) -> OctKey:
    # every replica knows the client secret: the cookie is readable by whichever answers
    # joserfc only where a provider is configured (a worker without one never loads it)
    from joserfc.jwk import OctKey

    assert settings.login.oidc is not None
    secret = settings.login.oidc.client_secret.encode()
    return OctKey.import_key(hashlib.sha256(b"csrgw oidc flow\0" + secret).digest())


def seal(settings: Settings, flow: Flow) -> str:
    # joserfc only where a provider is configured (a worker without one never loads it)
    from joserfc import jws

    return jws.serialize_compact({"alg": "HS256"}, orjson.dumps(asdict(flow)), _key(settings))


def unseal(settings: Settings, value: str | None) -> Flow | None:
    """The flow this browser started, or None (absent, forged, or older than LIFETIME)."""
    if not value or len(value) > 4096:
        return None
    # joserfc only where a provider is configured (a worker without one never loads it)
    from joserfc import jws
    from joserfc.errors import JoseError

    try:
        obj = jws.deserialize_compact(value, _key(settings), algorithms=["HS256"])
        data: dict[str, Any] = orjson.loads(obj.payload)
        flow = Flow(**data)
    except (JoseError, ValueError, TypeError):
        return None
    return flow if time.time() - flow.started < LIFETIME else None


class Once:
    """Remembers used flow states and logout-token ids, so that a replay is refused.

    With Redis sessions the memory is Redis (SET NX), so a replay to another replica fails
    as well; otherwise it is this process's.
    """

    def __init__(self, settings: Settings) -> None:
        self._seen: dict[str, float] = {}
        self._redis: Any = None
        if settings.sessions.store == "redis":
            import redis.asyncio as redis  # only where sessions are in Redis already

            self._redis = redis.from_url(settings.sessions.redis_url)
            self._prefix = settings.sessions.redis_prefix + "oidc-once:"

    async def first(self, key: str, ttl: int = LIFETIME * 2) -> bool:
        if self._redis is not None:
            from redis.exceptions import RedisError

            from gateway.core.errors import ServiceUnavailable
            try:
                return bool(await self._redis.set(self._prefix + key, b"1", nx=True, ex=ttl))
            except (RedisError, OSError) as exc:
                raise ServiceUnavailable("session_store_unavailable") from exc
        now = time.time()
        if len(self._seen) > 10_000:
            self._seen = {k: t for k, t in self._seen.items() if t > now}
        if self._seen.get(key, 0) > now:
            return False
        self._seen[key] = now + ttl
        return True

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
