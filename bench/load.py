"""One load run against one target: wrk when installed, else the raw asyncio client."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench import httpclient
from bench.procs import HOST

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_LAT = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_TOTAL = re.compile(r"^\s*(\d+) requests in", re.M)
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass(frozen=True)
class Load:
    """What every target gets: the same request, connections and time."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body_size: int
    connections: int
    duration: float


@dataclass(frozen=True)
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    non_2xx: int
    cpu_target: float = 0.0  # cores the target used during the run
    cpu_other: float = 0.0  # cores used by anything outside the bench (noise)
    cpu_us: float = 0.0  # CPU microseconds of the target's processes per answered request
    audited: int = -1  # audit lines the gateway wrote for this run's requests (-1: not counted)


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def lua_script(load: Load, folder: Path) -> Path | None:
    """wrk needs Lua only for a method or body; headers go on the command line."""
    if load.method == "GET" and not load.body_size:
        return None
    path = folder / f"{load.method.lower()}-{load.body_size}.lua"
    body = f'string.rep("x", {load.body_size})' if load.body_size else '""'
    path.write_text(f'wrk.method = "{load.method}"\nwrk.body = {body}\n'
                    'wrk.headers["Content-Type"] = "application/octet-stream"\n')
    return path


def run_wrk(binary: str, port: int, load: Load, folder: Path) -> Sample:
    argv = [binary, "-t1", f"-c{load.connections}", f"-d{max(1.0, load.duration):g}s",
            "--latency", "--timeout", "10s"]
    for name, value in load.headers:
        argv += ["-H", f"{name}: {value}"]
    script = lua_script(load, folder)
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(f"http://{HOST}:{port}{load.path}")
    out = subprocess.run(argv, capture_output=True, text=True, check=True,
                         timeout=load.duration + 60).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> Sample:
    lat = {q: float(v) * _UNITS[u] for q, v, u in _LAT.findall(out)}
    rps = _RPS.search(out)
    total = _TOTAL.search(out)
    non2xx = _NON2XX.search(out)
    sock = _SOCKET.search(out)
    if rps is None or "50" not in lat:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return Sample(float(rps.group(1)), lat["50"], lat.get("99", 0.0),
                  int(total.group(1)) if total else 0,
                  sum(int(g) for g in sock.groups()) if sock else 0,
                  int(non2xx.group(1)) if non2xx else 0)


def run_python(port: int, load: Load) -> Sample:
    raw = httpclient.build_request(load.method, load.path, port, dict(load.headers),
                                   load.body_size)
    result = httpclient.run(lambda: httpclient.closed_loop(
        port, raw, load.connections, load.duration))
    assert isinstance(result, httpclient.LoadResult)
    return from_result(result)


def from_result(result: httpclient.LoadResult) -> Sample:
    non2xx = sum(n for status, n in result.statuses.items() if not 200 <= status < 400)
    return Sample(result.rps, result.percentile_ms(50), result.percentile_ms(99),
                  len(result.latencies), result.errors, non2xx)


def run_load(port: int, load: Load, folder: Path, generator: str) -> Sample:
    binary = wrk_binary() if generator != "python" else None
    if binary is not None:
        return run_wrk(binary, port, load, folder)
    return run_python(port, load)
