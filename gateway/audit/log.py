"""structlog pipeline for audit lines: fill keys, redact, chain, render, write."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import time
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode

import orjson
import structlog

from gateway.audit.chain import GENESIS, last_hash_of, record_hash
from gateway.tracecontext import CURRENT_TRACE

AUDIT_KEYS = ("ts", "event", "request_id", "user", "actor", "csr", "company", "method", "path",
              "page", "action", "decision", "reason", "status", "duration_ms", "client_ip",
              "policy_rev", "impersonation_id", "impersonation_reason", "trace_id", "seq",
              "prev_hash", "hash")
EVENTS = ("request", "login", "login_failed", "logout", "session_expired",
          "impersonation_start", "impersonation_stop", "impersonation_denied",
          "impersonation_end", "policy_reload", "policy_reload_failed", "admin_change",
          "audit_start", "notification")
SECRET_WORDS = ("password", "cookie", "authorization", "token", "secret", "csrf")
CORE = frozenset(AUDIT_KEYS)
FILLED = AUDIT_KEYS[1:-3]


@functools.lru_cache(maxsize=1024)
def _secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


class _Clock:
    """RFC 3339 UTC with milliseconds, e.g. 2026-11-22T16:01:02.345Z; the part up to the
    second is formatted once per second, not once per line."""

    second, prefix = -1, ""

    def __call__(self) -> str:
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second = second
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self.prefix}.{int(now % 1 * 1000):03d}Z"


_now = _Clock()
TEMPLATE = dict.fromkeys(FILLED)  # every line has every core key, in this order
REDACTED = "[redacted]"


@dataclass(frozen=True)
class AuditConfig:
    sink: str = "file"
    path: str = "var/audit.jsonl"
    fsync: str = "interval"
    fsync_interval_s: float = 1.0
    fail_closed: bool = True
    redact_query_params: tuple[str, ...] = ("token", "password", "code", "key", "secret",
                                            "session", "sig")
    redact_keys: tuple[str, ...] = ()


def redact_path(path: str | None, params: tuple[str, ...]) -> str | None:
    if not path or "?" not in path:
        return path
    base, _, query = path.partition("?")
    lowered = {p.lower() for p in params}
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(k.lower() in lowered for k, _ in pairs):
        return path
    return base + "?" + urlencode([(k, REDACTED if k.lower() in lowered else v)
                                   for k, v in pairs], safe="[]")


class AuditLog:
    """Synchronous, buffered, chained; `healthy` turns False when the sink fails."""

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self.seq = 0
        self.last_hash = GENESIS
        self.prev_file_hash: str | None = None
        self._file: IO[bytes] | None = None
        self._healthy = True
        self._dirty = False
        processors: list[Any] = [self._fill, self._redact, self._chain, self._render]
        # bound once: a real BoundLogger, not the lazy proxy wrap_logger hands out
        self._logger = structlog.wrap_logger(
            self, processors=processors, wrapper_class=structlog.BoundLogger,
            context_class=dict, cache_logger_on_first_use=True).bind()
        self._last_record: dict[str, Any] = {}

    @property
    def healthy(self) -> bool:
        return self._healthy

    # structlog's "logger": receives the rendered line
    def msg(self, line: bytes) -> None:
        self._write(line)

    def open(self) -> None:
        if self.config.sink in ("file", "both"):
            try:
                os.makedirs(os.path.dirname(os.path.abspath(self.config.path)), exist_ok=True)
                last, seq = last_hash_of(self.config.path)
                self._file = open(self.config.path, "ab", buffering=256 * 1024)  # noqa: SIM115
            except OSError:
                self._healthy = False
                return
            previous = last or self.prev_file_hash
            self.last_hash = previous or GENESIS
            self.seq = 0
            self.emit("audit_start", reason="ok",
                      detail=f"continues {previous}" if previous else "new chain",
                      prev_file_hash=previous, prev_file_seq=seq)

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        self._logger.msg(event, **fields)
        return self._last_record

    def _fill(self, _l: Any, _m: str, event: dict[str, Any]) -> dict[str, Any]:
        record = {"ts": _now(), **TEMPLATE}
        record["trace_id"] = CURRENT_TRACE.get()
        record.update(event)  # core keys keep their place; extra keys follow
        return record

    def _redact(self, _l: Any, _m: str, record: dict[str, Any]) -> dict[str, Any]:
        path = record["path"]
        if path and "?" in path:
            record["path"] = redact_path(path, self.config.redact_query_params)
        for key in self.config.redact_keys:
            if key in record:
                record[key] = REDACTED
        for key in record.keys() - CORE:  # extra keys: redacted when they name a secret
            if _secret(key):
                record[key] = REDACTED
        return record

    def _chain(self, _l: Any, _m: str, record: dict[str, Any]) -> dict[str, Any]:
        record["seq"] = self.seq
        record["prev_hash"] = self.last_hash
        record["hash"] = record_hash(record)
        self.seq += 1
        self.last_hash = record["hash"]
        self._last_record = record
        return record

    def _render(self, _l: Any, _m: str, record: dict[str, Any]) -> bytes:
        return orjson.dumps(record, default=str) + b"\n"  # structlog passes bytes on as is

    def _write(self, line: bytes) -> None:
        try:
            if self.config.sink in ("stdout", "both"):
                sys.stdout.buffer.write(line)
            if self._file is not None:
                self._file.write(line)
                self._dirty = True
                if self.config.fsync == "always":
                    self._sync()
            elif self.config.sink == "file":
                raise OSError("audit file is not open")
        except (OSError, ValueError):
            self._healthy = False

    def _sync(self) -> None:
        if self._file is not None:
            self._file.flush()
            if self.config.fsync != "never":
                os.fsync(self._file.fileno())
        self._dirty = False

    async def sync(self) -> None:
        """The periodic flush: the buffer goes to the OS on the loop (a write into the page
        cache), fsync waits for the disk in a thread, so the disk never stalls requests."""
        if self.config.fsync == "never" or self._file is None or not self._dirty:
            self.flush()
            return
        try:
            self._file.flush()
            self._dirty = False
            fd = os.dup(self._file.fileno())  # the file may be reopened meanwhile (SIGHUP)
        except (OSError, ValueError):
            self._healthy = False
            return
        try:
            await asyncio.to_thread(os.fsync, fd)
        except OSError:
            self._healthy = False
        finally:
            os.close(fd)
        if self.config.sink in ("stdout", "both"):
            self.flush()

    def flush(self) -> None:
        try:
            if self._dirty:
                self._sync()
            if self.config.sink in ("stdout", "both"):
                sys.stdout.flush()
        except (OSError, ValueError):
            self._healthy = False

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    def reopen(self) -> None:
        """After logrotate moved the file: chain the new file to the old one's last hash."""
        self.close()
        self.prev_file_hash = self.last_hash
        self._healthy = True
        self.open()
