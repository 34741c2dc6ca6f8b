"""`csr-gateway bench`: the quick run produces every row and budget line, and its parsers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import httpclient
from bench.load import parse_wrk
from bench.report import BudgetLine, Report, Row, markdown, render
from bench.scenarios import SCENARIOS
from tests.support.services import service_up

WRK_OUTPUT = """\
Running 5s test @ http://127.0.0.1:8080/products/1
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.47ms    1.07ms  25.00ms   91.04%
    Req/Sec     9.20k   512.00    10.00k    70.00%
  Latency Distribution
     50%    3.34ms
     75%    3.80ms
     90%    4.50ms
     99%    1.20s
  45810 requests in 5.00s, 29.50MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   9162.68
Transfer/sec:      5.90MB
"""


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One `csr-gateway bench --quick` run, shared by the assertions below."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    done = subprocess.run([sys.executable, "-m", "gateway", "bench", "--quick", "--json",
                           str(out)], capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    data: dict[str, object] = json.loads(out.read_text())
    data["stdout"] = done.stdout
    return data


def test_quick_run_has_every_scenario_row(quick_run: dict[str, object]) -> None:
    """Each scenario has a gateway and a minimal-proxy row with positive numbers and ratios."""
    rows = quick_run["rows"]
    assert isinstance(rows, list)
    for name in SCENARIOS:
        for target in ("gateway", "minproxy"):
            row = next(r for r in rows if (r["scenario"], r["workers"], r["target"])
                       == (name, 1, target))
            assert row["rps"] > 0 and row["p50_ms"] > 0 and row["p99_ms"] > 0, row
            assert row["rss_mb"] > 0, row
            assert row["vs_minproxy"] > 0, row
            if any(r["target"] == "nginx" for r in rows):
                assert row["vs_nginx"] > 0, row


def test_quick_run_statuses(quick_run: dict[str, object]) -> None:
    """The gateway really decided: 403 for the denied scenario, 200 elsewhere."""
    rows = quick_run["rows"]
    assert isinstance(rows, list)
    for row in rows:
        expected = SCENARIOS[row["scenario"]].gateway_status if row["target"] == "gateway" \
            else 200
        assert row["status"] == expected, row


def test_quick_run_scales_workers_when_redis_is_up(quick_run: dict[str, object]) -> None:
    """With Redis on loopback, the buyer scenario is also measured with 2 workers."""
    if not service_up("127.0.0.1", 6379):
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    rows = quick_run["rows"]
    assert isinstance(rows, list)
    assert any(r["workers"] == 2 and r["target"] == "gateway" and r["rps"] > 0 for r in rows)


def test_quick_run_judges_every_budget_line(quick_run: dict[str, object]) -> None:
    """Throughput, latency, streaming and memory lines, each met or missed with a margin."""
    budget = quick_run["budget"]
    assert isinstance(budget, list)
    names = " | ".join(b["name"] for b in budget)
    for part in ("throughput buyer 1w", "p99 added", "upload streamed", "download streamed",
                 "RSS per worker"):
        assert part in names
    for line in budget:
        assert line["verdict"].startswith(("met", "MISSED")), line
    table = quick_run["stdout"]
    assert isinstance(table, str)
    assert "| scenario" in table and "| budget line" in table


def test_parse_wrk() -> None:
    """wrk's text: requests/s, median and p99 in ms (any unit), errors and non-2xx."""
    sample = parse_wrk(WRK_OUTPUT)
    assert sample.rps == pytest.approx(9162.68)
    assert sample.p50_ms == pytest.approx(3.34)
    assert sample.p99_ms == pytest.approx(1200.0)
    assert (sample.requests, sample.errors, sample.non_2xx) == (45810, 3, 7)


@pytest.mark.parametrize(("measured", "at_least", "verdict"), [
    (0.9, True, "met"), (0.5, True, "MISSED by 0.350"), (70.0, False, "met"),
    (95.0, False, "MISSED by 15.00"),
], ids=["ratio-met", "ratio-missed", "memory-met", "memory-missed"])
def test_budget_verdicts(measured: float, at_least: bool, verdict: str) -> None:
    """A budget line says met, or missed by how much."""
    limit = 0.85 if at_least else 80.0
    line = BudgetLine("x", measured, limit, "u", at_least=at_least)
    assert line.verdict.startswith(verdict)


def test_table_ratios() -> None:
    """Ratios are requests/s over the minimal proxy and nginx rows of the same scenario."""
    from bench.load import Sample

    report = Report(rows=[Row("buyer", 1, t, 200, [Sample(rps, 1.0, 2.0, 10, 0, 0)])
                          for t, rps in (("gateway", 900.0), ("minproxy", 1000.0),
                                         ("nginx", 3000.0))])
    text = render(report)
    assert "0.90x" in text and "0.30x" in text
    assert markdown([("a", "b"), ("1", "2")]).count("\n") == 2


async def test_client_reads_chunked_and_length_bodies(tmp_path: Path) -> None:
    """The load client frames both response kinds and keeps the connection alive."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/chunked":
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(b"x" * 1000)
            await response.write_eof()
            return response
        return web.Response(body=b"y" * 500)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        conn = await httpclient.connect(port)
        for path, size in (("/chunked", 1000), ("/plain", 500), ("/chunked", 1000)):
            assert await conn.exchange(httpclient.build_request("GET", path, port)) == 200
            assert conn.body_bytes == size
    finally:
        await runner.cleanup()


def test_quick_run_measures_forked_workers_by_pss(quick_run: dict[str, object]) -> None:
    """With Redis up, memory is also judged as deployed: two forked workers, each its PSS,
    after every injected session made a request through the shared port."""
    budget = quick_run["budget"]
    assert isinstance(budget, list)
    (line,) = [b for b in budget if b["name"].startswith("PSS per worker, 2 workers")]
    assert 0 < line["measured"] < 1000 and "1,000 requests answered 200" in line["note"]
