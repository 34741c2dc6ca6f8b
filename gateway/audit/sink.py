"""The audit file: appends on the loop, group commits (one fsync for every line waiting)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os

# A full disk or a file size limit: the same descriptor works again once space returns.
SPACE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# Lines held in memory while the disk refuses them (refusals add none; only the requests
# already past the gate and background events do); past this they are counted as dropped.
PENDING_CAP = 16 * 1024 * 1024
WRITE_AT = 256 * 1024  # pending bytes handed to the kernel at once, between commits


class SinkDown(Exception):
    """The audit file cannot be written (or made durable) now."""


class AuditFile:
    """One file descriptor opened O_APPEND; lines wait in `pending` until written.

    `lines` counts every line appended, `durable` how many of them are on the disk (or,
    with fsync `never`, in the kernel). A commit writes all pending lines in one write
    on the event loop (the page cache) and waits for one fsync in a worker thread; the
    callers arriving meanwhile share the next commit.
    """

    def __init__(self, path: str, fsync: str) -> None:
        self.path, self.fsync = path, fsync
        self.fd: int | None = None
        self.pending = bytearray()
        self.lines = 0
        self.durable = 0
        self.dropped = 0
        self.error: OSError | None = None
        self.mark: object = None  # what the caller calls the last line appended (its head)
        self.durable_mark: object = None
        self._commit: asyncio.Task[None] | None = None

    def open(self) -> int:
        """Open for appending; a cut-off last line (crash, full disk) is ended with a
        newline so the next line starts cleanly. Returns the torn tail's length in bytes."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            torn = _torn_tail(self.path)
            if torn:
                os.write(fd, b"\n")
        except OSError:
            os.close(fd)
            raise
        self.fd, self.error = fd, None
        return torn

    def append(self, line: bytes, mark: object = None) -> None:
        if self.error is not None and len(self.pending) > PENDING_CAP:
            self.dropped += 1
            return
        self.pending += line
        self.lines += 1
        self.mark = mark
        if self._commit is not None or self.error is not None:
            return
        if self.fsync == "always":
            self._start_commit()
        elif len(self.pending) >= WRITE_AT and self.fd is not None:
            with contextlib.suppress(OSError):  # recorded in `error`; the keeper retries
                self.write_pending()  # to the page cache, like a full stdio buffer

    def _start_commit(self) -> None:
        with contextlib.suppress(RuntimeError):  # no loop (a command-line tool): at close
            self._commit = asyncio.get_running_loop().create_task(self._run_commit())

    @property
    def written(self) -> int:
        """Lines handed to the kernel completely (a partial last write stays pending)."""
        return self.lines - self.pending.count(b"\n")

    def write_pending(self) -> None:
        """Everything pending into the kernel; a short write keeps the rest pending, so a
        retry continues the same line instead of starting a torn one."""
        if self.fd is None:
            raise SinkDown("audit file is not open")
        try:
            while self.pending:
                n = os.write(self.fd, self.pending)
                del self.pending[:n]
        except OSError as exc:
            self.error = exc
            raise

    async def wait_durable(self, upto: int) -> None:
        """Return once line number `upto` is durable; raise SinkDown if it cannot be."""
        while self.durable < upto:
            if self.error is not None or self.fd is None:
                raise SinkDown(str(self.error or "audit file is not open"))
            if self._commit is None:
                self._start_commit()
            assert self._commit is not None
            await asyncio.shield(self._commit)

    async def commit(self) -> None:
        """The periodic flush: whatever is pending becomes durable (errors recorded)."""
        if self.durable < self.lines and self.error is None and self.fd is not None:
            with contextlib.suppress(SinkDown):  # recorded in `error`; the keeper retries
                await self.wait_durable(self.lines)

    async def _run_commit(self) -> None:
        try:
            while await self._commit_once() and self.fsync == "always" and \
                    self.durable < self.lines:
                pass  # with fsync `always`, lines that arrived meanwhile go straight on
        finally:
            self._commit = None

    async def _commit_once(self) -> bool:
        target, mark = self.lines, self.mark
        try:
            self.write_pending()
        except (OSError, SinkDown):
            return False
        if self.fsync != "never" and self.fd is not None:
            fd = os.dup(self.fd)  # the file may be reopened while the disk is waited for
            try:
                await asyncio.to_thread(os.fsync, fd)
            except OSError as exc:
                self.error = exc
                return False
            finally:
                os.close(fd)
        if target > self.durable:
            self.durable, self.durable_mark = target, mark
        return True

    def sync_now(self) -> None:
        """Write and fsync on the calling thread (shutdown, the admin Transaction Log)."""
        self.write_pending()
        if self.fsync != "never" and self.fd is not None:
            os.fsync(self.fd)
        self.durable, self.durable_mark = self.lines, self.mark

    async def settle(self) -> None:
        """Let a commit in flight finish (before closing or reopening the descriptor)."""
        if self._commit is not None:
            await asyncio.shield(self._commit)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _torn_tail(path: str) -> int:
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        if size == 0:
            return 0
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    if tail.endswith(b"\n"):
        return 0
    cut = tail.rfind(b"\n")
    return len(tail) - cut - 1 if cut >= 0 else len(tail)
