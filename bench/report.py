"""Results: one row per scenario x workers x target, budget lines, the table, JSON, PNG."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.load import Sample

TARGETS = ("gateway", "minproxy", "nginx", "authz")  # authz: nginx auth_request + gateway
NOISY = 0.15  # cores used by other jobs during a run above which its row is marked


@dataclass
class Row:
    scenario: str
    workers: int
    target: str
    status: int = 0  # what a single probe request got
    samples: list[Sample] = field(default_factory=list)
    rss_mb: float = 0.0  # peak RSS (VmHWM) of the largest process of the target
    rss_total_mb: float = 0.0  # peak RSS summed over the target's processes
    pss_mb: float = 0.0  # PSS of the largest process after a run (shared pages split)

    def median(self, name: str) -> float:
        values = [getattr(s, name) for s in self.samples]
        return float(statistics.median(values)) if values else 0.0

    @property
    def rps(self) -> float:
        return self.median("rps")

    @property
    def p50_ms(self) -> float:
        return self.median("p50_ms")

    @property
    def p99_ms(self) -> float:
        return self.median("p99_ms")

    @property
    def cpu(self) -> float:
        return self.median("cpu_target")

    @property
    def cpu_us(self) -> float:
        """CPU microseconds per request of all the target's processes (median of runs)."""
        return self.median("cpu_us")

    @property
    def answered(self) -> int:
        return sum(s.requests for s in self.samples)

    @property
    def audited(self) -> int:
        """Audit lines counted for this row's runs (-1 when not counted)."""
        counted = [s.audited for s in self.samples if s.audited >= 0]
        return sum(counted) if counted else -1

    @property
    def other(self) -> float:
        return max((s.cpu_other for s in self.samples), default=0.0)

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.samples)


@dataclass(frozen=True)
class BudgetLine:
    """`measured` against `limit`; `at_least` says which side of the limit is good."""

    name: str
    measured: float
    limit: float
    unit: str
    at_least: bool
    note: str = ""

    @property
    def met(self) -> bool:
        return self.measured >= self.limit if self.at_least else self.measured <= self.limit

    @property
    def verdict(self) -> str:
        gap = abs(self.measured - self.limit)
        return f"met ({_num(gap)} {self.unit} spare)" if self.met else \
            f"MISSED by {_num(gap)} {self.unit}"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    budget: list[BudgetLine] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # latency probe, streams, memory
    notes: list[str] = field(default_factory=list)
    setup: dict[str, Any] = field(default_factory=dict)

    def find(self, scenario: str, workers: int, target: str) -> Row | None:
        return next((r for r in self.rows if (r.scenario, r.workers, r.target)
                     == (scenario, workers, target)), None)

    def ratio(self, row: Row, baseline: str) -> float | None:
        base = self.find(row.scenario, row.workers, baseline)
        if base is None or not base.rps:
            return None
        return row.rps / base.rps

    def cpu_ratio(self, row: Row, baseline: str) -> float | None:
        """The baseline's CPU per request over this row's: 1.0 costs the same, 0.5 twice."""
        base = self.find(row.scenario, row.workers, baseline)
        if base is None or not base.cpu_us or not row.cpu_us:
            return None
        return base.cpu_us / row.cpu_us

    def to_json(self) -> dict[str, Any]:
        rows = []
        for r in self.rows:
            rows.append({**{k: v for k, v in asdict(r).items() if k != "samples"},
                         "rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
                         "vs_minproxy": self.ratio(r, "minproxy"),
                         "vs_nginx": self.ratio(r, "nginx"), "cpu_us": r.cpu_us,
                         "cpu_vs_minproxy": self.cpu_ratio(r, "minproxy"),
                         "cpu_vs_nginx": self.cpu_ratio(r, "nginx"),
                         "answered": r.answered, "audited": r.audited,
                         "samples": [asdict(s) for s in r.samples]})
        budget = [{**asdict(b), "met": b.met, "verdict": b.verdict} for b in self.budget]
        return {"setup": self.setup, "rows": rows, "budget": budget, "extra": self.extra,
                "notes": self.notes}


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(report: Report) -> str:
    head = ("scenario", "workers", "target", "status", "req/s", "CPU us/req", "p50 ms",
            "p99 ms", "RSS MB", "PSS MB", "CPU", "other", "vs minproxy", "CPU vs minproxy",
            "vs nginx", "CPU vs nginx")
    lines = [head]
    for r in report.rows:
        other = f"{r.other:.2f}" + ("!" if r.other > NOISY else "")
        lines.append((r.scenario, str(r.workers), r.target, str(r.status), f"{r.rps:,.0f}",
                      f"{r.cpu_us:.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}",
                      f"{r.rss_mb:.1f}", f"{r.pss_mb:.1f}", f"{r.cpu:.2f}",
                      other, _ratio(report.ratio(r, "minproxy")),
                      _ratio(report.cpu_ratio(r, "minproxy")),
                      _ratio(report.ratio(r, "nginx")), _ratio(report.cpu_ratio(r, "nginx"))))
    return markdown(lines)


def budget_table(report: Report) -> str:
    lines = [("budget line", "measured", "limit", "verdict", "note")]
    for b in report.budget:
        sign = ">=" if b.at_least else "<="
        lines.append((b.name, f"{_num(b.measured)} {b.unit}", f"{sign} {_num(b.limit)} {b.unit}",
                      b.verdict, b.note))
    return markdown(lines)


def markdown(lines: Sequence[Sequence[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    numeric = [i for i in range(len(widths)) if all(_numeric(line[i]) for line in lines[1:])]

    def fmt(line: Sequence[str]) -> str:
        cells = [c.rjust(w) if i in numeric else c.ljust(w)
                 for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        return "| " + " | ".join(cells) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if i in numeric else "-" * w
                             for i, w in enumerate(widths)) + " |"
    return "\n".join([fmt(lines[0]), rule, *(fmt(line) for line in lines[1:])])


def _numeric(cell: str) -> bool:
    stripped = cell.replace(",", "").replace(".", "").rstrip("x!")
    return stripped.isdigit() or cell == "-"


def render(report: Report) -> str:
    parts = [table(report)]
    if report.budget:
        parts += ["", budget_table(report)]
    notes = list(report.notes)
    if any(r.other > NOISY for r in report.rows):
        notes.append(f"rows marked ! ran while other jobs used more than {NOISY} cores: "
                     "their numbers are low; rerun on a quiet machine (--wait-quiet)")
    if notes:
        parts += ["", *(f"- {note}" for note in notes)]
    return "\n".join(parts)


def plot(report: Report, path: Path) -> None:
    """Requests/s per scenario row, one bar per target (needs matplotlib: the bench extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(dict.fromkeys((r.scenario, r.workers) for r in report.rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(keys)), 4.5))
    width = 0.8 / len(TARGETS)
    for i, target in enumerate(TARGETS):
        values = [(row.rps if (row := report.find(s, w, target)) else 0.0) for s, w in keys]
        ax.bar([k + i * width for k in range(len(keys))], values, width, label=target)
    ax.set_xticks([k + width for k in range(len(keys))],
                  [f"{s}\n{w} worker{'s' if w > 1 else ''}" for s, w in keys])
    ax.set_ylabel("requests/s")
    ax.set_yscale("log")
    ax.set_title("csr-gateway bench (same load, same machine, same run)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
