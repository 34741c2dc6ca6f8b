"""Redis clients that fail within a bound: a frozen or unreachable Redis is a 503 at once.

redis-py's defaults wait: a socket timeout of 5 s, ten retries with back-off, and a pool
that raises when it is full instead of letting a request wait its turn. Requests here go
through one bounded BlockingConnectionPool (a request waits up to `redis_pool_timeout`
for a connection, never longer), every command has connect and socket timeouts, and a
broken connection is retried once (a Redis restart closes the pooled ones); a timeout is
never retried, so a frozen Redis costs a request one socket timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.core.settings import SessionSettings


def _common(cfg: SessionSettings, retries: int = 1) -> dict[str, Any]:
    # imported here: a worker on memory sessions does not carry redis (~6 MB)
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    return {"socket_connect_timeout": cfg.redis_connect_timeout,
            "retry": Retry(NoBackoff(), retries, supported_errors=(RedisConnectionError,)),
            "socket_keepalive": True}


def request_client(cfg: SessionSettings) -> Any:
    """The client requests use: a bounded pool with a bounded wait."""
    # redis is loaded only where Redis is configured
    import redis.asyncio as redis

    pool = redis.BlockingConnectionPool.from_url(
        cfg.redis_url, max_connections=cfg.redis_max_connections,
        timeout=cfg.redis_pool_timeout, socket_timeout=cfg.redis_socket_timeout,
        health_check_interval=10, **_common(cfg))
    return redis.Redis(connection_pool=pool)


def subscriber_client(cfg: SessionSettings) -> Any:
    """Pub/sub: a subscription is silent for long stretches, so no socket timeout here;
    its own connection, never one a request is waiting for. Never retried in place: a break
    must reach the listener, which drops every copy (messages may have been missed)."""
    # redis is loaded only where Redis is configured
    import redis.asyncio as redis

    return redis.Redis.from_url(cfg.redis_url, socket_timeout=None, health_check_interval=5,
                                **_common(cfg, retries=0))


def probe_client(cfg: SessionSettings) -> Any:
    """readyz: one connection of its own, so a full request pool does not read as down."""
    # redis is loaded only where Redis is configured
    import redis.asyncio as redis

    return redis.Redis.from_url(cfg.redis_url, single_connection_client=True,
                                socket_timeout=cfg.redis_socket_timeout, **_common(cfg))
