"""Decision tables: YAML rows of persona, request and expected decision, run against the policy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gateway.policylab import questions
from gateway.policylab.harness import UnknownUser

if TYPE_CHECKING:
    from gateway.policylab.harness import Harness, Verdict

KEYS = {"persona", "as", "request", "expect", "reason", "note", "mode", "unmask", "ask",
        "requester", "tags"}
MODES = ("read", "write")
DECISIONS = ("allow", "deny")


@dataclass(frozen=True)
class Case:
    file: Path
    line: int
    persona: str
    acting_as: str | None
    method: str
    path: str
    expect: str
    reason: str | None
    mode: str = "write"  # read: the impersonation is read-only (the gateway's own rule)
    unmask: str | None = None  # asks `unmask(actor, buyer, field)` instead of a request
    ask: str | None = None  # a yes/no question (policylab/questions.py) instead of a request
    requester: str | None = None  # may_approve: whose request
    tags: tuple[str, ...] | None = None  # the buyer's tags for this row (a what-if)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def label(self) -> str:
        who = self.persona + (f" as {self.acting_as}" if self.acting_as else "")
        if self.unmask is not None:
            return f"{who} unmask {self.unmask}"
        if self.ask:
            return f"{self.persona} {self.ask}" + (
                f" ({self.requester} for {self.acting_as})" if self.requester
                else f" {self.acting_as}")
        read_only = " (read-only)" if self.mode == "read" else ""
        return f"{who} {self.method} {self.path}{read_only}"


class TableError(ValueError):
    """A malformed row: file, line and what is wrong."""


def load_table(path: Path) -> list[Case]:
    """Every row of one table, each with its line number; all problems raised at once."""
    root = yaml.compose(path.read_text(encoding="utf-8"))
    if root is None:
        return []
    if not isinstance(root, yaml.SequenceNode):
        raise TableError(f"{path}:1: a decision table is a YAML list of rows")
    cases, problems = [], []
    for node in root.value:
        line = node.start_mark.line + 1
        try:
            cases.append(_case(path, line, _construct(node)))
        except TableError as exc:
            problems.append(f"{path}:{line}: {exc}")
    if problems:
        raise TableError("\n".join(problems))
    return cases


def _construct(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _case(path: Path, line: int, row: Any) -> Case:
    if not isinstance(row, dict):
        raise TableError("a row is a mapping: {persona, as, request, expect, reason}")
    if "ask" in row:
        try:
            fields = questions.question_fields(row)
        except questions.BadRow as exc:
            raise TableError(str(exc)) from None
        return Case(path, line, method="", path="", reason=None, **fields)
    unknown = sorted(set(row) - KEYS)
    asks = {"unmask"} if "unmask" in row else {"request"}
    missing = sorted({"persona", "expect", *asks} - set(row))
    if unknown or missing:
        raise TableError("; ".join([f"unknown key {k!r}" for k in unknown] +
                                   [f"missing key {k!r}" for k in missing]))
    if row["expect"] not in DECISIONS:
        raise TableError(f"expect must be allow or deny, got {row['expect']!r}")
    if "unmask" in row:
        return Case(path, line, str(row["persona"]), row.get("as"), "", "", row["expect"],
                    row.get("reason"), unmask=str(row["unmask"]))
    if row.get("mode", "write") not in MODES:
        raise TableError(f"mode must be read or write, got {row['mode']!r}")
    method, _, target = str(row["request"]).strip().partition(" ")
    if not target.startswith("/"):
        raise TableError(f'request must be "METHOD /path", got {row["request"]!r}')
    return Case(path, line, str(row["persona"]), row.get("as"), method.upper(),
                target.strip(), row["expect"], row.get("reason"), row.get("mode", "write"))


def check_case(bench: Harness, case: Case) -> Verdict | str:
    """The verdict when it matches the row, else the readable difference."""
    if case.ask:
        return questions.check_question(bench, case)
    try:
        got = bench.decide_unmask(case.persona, case.acting_as, case.unmask) \
            if case.unmask is not None else \
            bench.decide(case.persona, case.acting_as, case.method, case.path, case.mode)
    except UnknownUser as exc:
        return str(exc)
    if got.decision == case.expect and case.reason in (None, got.reason):
        return got
    want = case.expect + (f" ({case.reason})" if case.reason else "")
    where = f"page {got.page}, action {got.action}" if got.page else "no page"
    return f"expected {want}, got {got.decision} ({got.reason}) [{where}]"


def run_tables(bench: Harness, files: Iterable[Path]) -> int:
    """Prints each failure with file:line and a summary; 1 when any row fails."""
    total = failed = 0
    for path in files:
        try:
            cases = load_table(path)
        except (TableError, yaml.YAMLError, OSError) as exc:
            print(f"ERROR {exc}")
            return 2
        for case in cases:
            total += 1
            result = check_case(bench, case)
            if isinstance(result, str):
                failed += 1
                print(f"FAIL {case.where}  {case.label}\n     {result}")
    print(f"{total - failed} passed, {failed} failed (policy {bench.engine.rev})")
    return 1 if failed else 0
