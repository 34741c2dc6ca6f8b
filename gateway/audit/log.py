"""structlog pipeline for audit lines: fill keys, redact, chain, render, write."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
import structlog

from gateway.audit.anchor import AnchorKeeper
from gateway.audit.chain import GENESIS, last_hash_of, record_hash
from gateway.audit.records import AUDIT_KEYS as AUDIT_KEYS  # importable from here as before
from gateway.audit.records import EVENTS as EVENTS
from gateway.audit.records import Emit, Line, check
from gateway.audit.sink import SPACE_ERRORS, AuditFile, SinkDown
from gateway.request.tracecontext import CURRENT_TRACE

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
# a filled line with no key beyond the core ones has this many (ts, the template's keys and
# trace_id, the last of them); only a longer one can carry an extra key to look at
_FILLED_LEN = len({"ts", *FILLED, "trace_id"})
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
    """Chained lines into an AuditFile: `durable()` for a write-ahead intent, `tick()` each
    second to commit buffered lines or, while the sink is down, to try it again.

    `emit(event, **keys)` writes one line, typed by the event's record (gateway/audit/records.py);
    `strict` refuses an event without a record or a key its record lacks (the test suite)."""

    emit: Emit

    def __init__(self, config: AuditConfig, anchor: AnchorKeeper | None = None, *,
                 strict: bool = False) -> None:
        self.config = config
        self.strict = strict
        self.emit = self._checked if strict else self._emit  # production pays no check
        self.anchor = anchor
        self.seq = 0
        self.last_hash = GENESIS
        self.prev_file_hash: str | None = None
        self.segment: str | None = None  # hash of this segment's audit_start
        self.chain = f"{socket.gethostname()}:{os.path.abspath(config.path)}"
        self.file = AuditFile(config.path, config.fsync) \
            if config.sink in ("file", "both") else None
        self.refused = 0  # requests refused since the sink went down
        self.down_since: float | None = None
        self._lost = 0
        processors: list[Any] = [self._fill, self._redact, self._chain, self._render]
        # bound once: a real BoundLogger, not the lazy proxy wrap_logger hands out
        self._logger = structlog.wrap_logger(
            self, processors=processors, wrapper_class=structlog.BoundLogger,
            context_class=dict, cache_logger_on_first_use=True).bind()
        self._last_record: Line = {}

    @property
    def healthy(self) -> bool:
        f = self.file
        return f is None or (f.fd is not None and f.error is None)

    @property
    def problem(self) -> str | None:
        """What is wrong with the sink, in words (None while it writes)."""
        if self.healthy or self.file is None:
            return None
        error = self.file.error
        return f"{error.strerror or error} ({self.config.path})" if error else \
            f"not open ({self.config.path})"

    # structlog's "logger": receives the rendered line
    def msg(self, line: bytes) -> None:
        self._write(line)

    def open(self) -> None:
        if self.file is None:
            return
        try:
            self._open_segment()
        except OSError as exc:
            self._went_down(exc)

    def _open_segment(self) -> None:
        assert self.file is not None
        last, seq = last_hash_of(self.config.path)
        torn = self.file.open()
        previous = last or self.prev_file_hash
        self.last_hash = previous or GENESIS
        self.seq = 0
        self.emit("audit_start", reason="ok",
                  detail=f"continues {previous}" if previous else "new chain",
                  prev_file_hash=previous, prev_file_seq=seq, chain=self.chain,
                  torn_tail=torn or None, lost_lines=self._lost or None)
        self._lost = 0

    def _went_down(self, exc: OSError) -> None:
        assert self.file is not None
        self.file.error = exc
        if self.down_since is None:
            self.down_since = time.monotonic()

    def _emit(self, event: str, /, **fields: Any) -> Line:
        self._logger.msg(event, **fields)
        return self._last_record

    def _checked(self, event: str, /, **fields: Any) -> Line:
        check(event, fields)
        return self._emit(event, **fields)

    def refuse(self) -> None:
        """A request refused because the sink is down: counted, not written."""
        self.refused += 1

    async def durable(self) -> None:
        """Every line emitted so far is on the disk; SinkDown if that cannot be done."""
        if self.file is None:
            self.flush()
            return
        await self.file.wait_durable(self.file.lines)

    async def tick(self) -> None:
        """Once a second: buffered lines become durable, or a down sink is retried."""
        if self.file is None:
            self.flush()
        elif self.healthy:
            await self.file.commit()
        else:
            await self.heal()
        if self.anchor is not None:
            await self.anchor.update(self.head)

    async def heal(self) -> bool:
        """Write again: the same descriptor after a full disk, else a new segment. On
        success an `audit_resumed` line says how many requests were refused meanwhile."""
        f = self.file
        if f is None or self.healthy:
            return True
        await f.settle()
        error = f.error
        try:
            if f.fd is not None:
                f.error = None
                try:
                    f.write_pending()
                except OSError as exc:
                    if exc.errno in SPACE_ERRORS:
                        raise
                    self._lost += f.lines - f.written  # the descriptor itself is gone
                    f.pending.clear()
                    f.close()
            if f.fd is None:
                self._open_segment()
        except OSError as exc:
            self._went_down(exc)
            return False
        self._resumed(error)
        try:
            await self.durable()
        except SinkDown:
            return False
        return True

    def _resumed(self, error: OSError | None) -> None:
        assert self.file is not None
        down = time.monotonic() - (self.down_since or time.monotonic())
        self.emit("audit_resumed", reason="ok", refused=self.refused,
                  dropped_lines=self.file.dropped or None, down_s=round(down, 3),
                  detail=f"was: {error.strerror if error else 'not open'}")
        self.refused, self.file.dropped, self.down_since = 0, 0, None

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
        if len(record) > _FILLED_LEN:  # extra keys: redacted when they name a secret
            for key in record.keys() - CORE:
                if _secret(key):
                    record[key] = REDACTED
        return record

    def _chain(self, _l: Any, _m: str, record: dict[str, Any]) -> dict[str, Any]:
        record["seq"] = self.seq
        record["prev_hash"] = self.last_hash
        record["hash"] = record_hash(record)
        if record["event"] == "audit_start":
            self.segment = record["hash"]
        self.seq += 1
        self.last_hash = record["hash"]
        self._last_record = record
        return record

    def _render(self, _l: Any, _m: str, record: dict[str, Any]) -> bytes:
        # structlog passes bytes on as is. orjson leaves U+2028/U+2029 raw, and readers that
        # split lines on them (JavaScript, Python's str.splitlines) would cut a record.
        return orjson.dumps(record, default=str).replace(
            b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029") + b"\n"

    def _write(self, line: bytes) -> None:
        if self.config.sink in ("stdout", "both"):
            with contextlib.suppress(OSError, ValueError):  # a closed stdout must not
                sys.stdout.buffer.write(line)               # stop the file
        if self.file is not None:
            self.file.append(line, (self.chain, self.segment, self.seq - 1, self.last_hash))

    @property
    def head(self) -> tuple[str, str | None, int, str] | None:
        """(chain, segment, seq, hash) of the last durable line, for the anchor."""
        mark = self.file.durable_mark if self.file is not None else None
        return mark  # type: ignore[return-value]

    def flush(self) -> None:
        """Synchronously onto the disk (shutdown, reading the file back)."""
        try:
            if self.file is not None and self.healthy:
                self.file.sync_now()
            if self.config.sink in ("stdout", "both"):
                sys.stdout.flush()
        except (OSError, SinkDown, ValueError) as exc:
            if isinstance(exc, OSError):
                self._went_down(exc)

    def close(self) -> None:
        self.flush()
        if self.file is not None:
            self.file.close()

    def reopen(self) -> None:
        """After logrotate moved the file: chain the new file to the old one's last hash."""
        error = self.file.error if self.file is not None else None
        self.close()
        self.prev_file_hash = self.last_hash
        self.open()
        if self.healthy and self.down_since is not None:
            self._resumed(error)
