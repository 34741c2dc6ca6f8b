"""Server processes under measurement: start, wait until listening, read their memory, stop."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def listening_sockets(port: int) -> int:
    """How many LISTEN sockets hold this port (one per SO_REUSEPORT worker)."""
    wanted, count = f"{port:04X}", 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            next(fh, None)
            for line in fh:
                parts = line.split()
                if parts[1].rsplit(":", 1)[1] == wanted and parts[3] == "0A":
                    count += 1
    return count


def status_kb(pid: int, key: str) -> int:
    """A `VmRSS`/`VmHWM` line of /proc/<pid>/status in kB (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid: int) -> int:
    """Proportional set size: shared pages split among the processes sharing them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """Every descendant of pid, found by scanning /proc (stdlib only)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def reset_peak(pids: Sequence[int]) -> None:
    """Writing 5 to clear_refs resets VmHWM (Linux >= 4.0); harmless where refused."""
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")


@dataclass
class Server:
    """One thing under measurement (or the upstream), started by us as a subprocess."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    workers: int = 1
    listeners: int = 0  # LISTEN sockets when ready (0: one per worker, SO_REUSEPORT)
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Server:
        self.launch()
        self.wait_listening(timeout)
        return self

    def launch(self) -> Server:
        """Start without waiting (start several, then wait for each: faster)."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        env = {**os.environ, **(self.env or {})}
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL)
        log.close()
        return self

    def wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while listening_sockets(self.port) < (self.listeners or self.workers):
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not listening on {self.port} after "
                                   f"{timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def pids(self) -> list[int]:
        if self.proc is None:
            return []
        return [self.proc.pid, *children(self.proc.pid)]

    def rss_mb(self, key: str = "VmRSS") -> tuple[float, float]:
        """(largest single process, whole tree) in MB; key "Pss" for proportional sizes."""
        sizes = [pss_kb(pid) if key == "Pss" else status_kb(pid, key) for pid in self.pids()]
        return (max(sizes, default=0) / 1024, sum(sizes) / 1024)

    def stop(self, timeout: float = 20.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        tree = self.pids()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in reversed(tree):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait(5)
        for pid in tree[1:]:  # workers the parent did not reap in time
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 0)
                time.sleep(0.2)
                os.kill(pid, signal.SIGKILL)


def _stat_busy() -> tuple[int, int]:
    """(all jiffies, busy jiffies) summed over CPUs, from /proc/stat."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:9]]
    return sum(values), sum(values) - values[3] - values[4]


def _jiffies(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError), \
                open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def _own_jiffies() -> int:
    """This process and its waited-for children (wrk), in jiffies."""
    tick = os.sysconf("SC_CLK_TCK")
    selves = [resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                  resource.RUSAGE_CHILDREN)]
    return int(sum(r.ru_utime + r.ru_stime for r in selves) * tick)


class CpuMeter:
    """CPU cores used during a run: by the target, and by anything that is not the bench
    (another job on the machine makes the numbers unreliable; the table says so)."""

    def __init__(self, target: Sequence[int], bench: Sequence[int]) -> None:
        self.target, self.bench = list(target), list(bench)
        self.target_s = 0.0
        self.start = (_stat_busy(), _jiffies(self.target), _jiffies(self.bench),
                      _own_jiffies())

    def stop(self) -> tuple[float, float]:
        """(cores the target used, cores other jobs used); `target_s` is set to the
        target's CPU seconds (utime + stime of all its processes)."""
        (all0, busy0), target0, bench0, own0 = self.start
        all1, busy1 = _stat_busy()
        target = _jiffies(self.target) - target0
        self.target_s = target / os.sysconf("SC_CLK_TCK")
        ours = target + _jiffies(self.bench) - bench0 + _own_jiffies() - own0
        cpus = os.cpu_count() or 1
        scale = cpus / max(1, all1 - all0)  # jiffies -> cores
        return target * scale, max(0.0, (busy1 - busy0 - ours) * scale)


def background_busy(seconds: float = 0.5) -> float:
    """Cores busy while the bench is idle: other jobs on this machine."""
    all0, busy0 = _stat_busy()
    time.sleep(seconds)
    all1, busy1 = _stat_busy()
    return (busy1 - busy0) * (os.cpu_count() or 1) / max(1, all1 - all0)


def wait_quiet(limit: float, threshold: float = 0.15) -> float:
    """Wait up to `limit` seconds for other jobs to leave the CPUs; the last reading."""
    deadline = time.monotonic() + limit
    busy = background_busy()
    while busy > threshold and time.monotonic() < deadline:
        busy = background_busy(1.0)
    return busy
