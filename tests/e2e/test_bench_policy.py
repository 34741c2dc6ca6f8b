"""The policy benchmark `csr-gateway bench` calls: one row per question, cached far cheaper."""

from __future__ import annotations

from bench.policy import SCENARIOS, policy_benchmark, render
from gateway.config.load import load_settings
from tests.support.gateway import ROOT


def test_rows_for_every_question_with_cached_much_cheaper() -> None:
    """Buyer, CSR, impersonated page, re-check, refusal and admin rows, each with both
    rates; a cache hit costs a small fraction of asking Polar."""
    rows = policy_benchmark(load_settings(ROOT / "config" / "gateway.yaml"), seconds=0.2)
    assert [r["scenario"] for r in rows] == [s[0] for s in SCENARIOS]
    for row in rows:
        assert set(row) == {"scenario", "cached_per_s", "uncached_per_s", "cached_us",
                            "uncached_us"}
        assert row["cached_us"] * 10 < row["uncached_us"], row
        assert row["cached_per_s"] > row["uncached_per_s"] > 0
    assert "impersonated page" in render(rows)
