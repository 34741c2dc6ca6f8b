"""Which rules a policy defines, which each one calls, and which the gateway can ever reach.

A light reading of Polar source, enough for lints: clause heads at the start of a line, the
names called in each body, the names used in `?=` self-checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

HEAD = re.compile(r"^([a-z_][A-Za-z0-9_]*)\(")
CALL = re.compile(r"\b([a-z_][A-Za-z0-9_]*)\(")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
FACT = re.compile(r'^\s*(acting_grant|grant)\("([^"]+)",\s*"([^"]+)",\s*"([^"]+)"\)\s*;',
                  re.MULTILINE)


@dataclass
class Rule:
    name: str
    file: Path
    line: int
    calls: set[str] = field(default_factory=set)


@dataclass
class RuleGraph:
    rules: dict[str, list[Rule]] = field(default_factory=dict)  # name -> its clauses
    checked: set[str] = field(default_factory=set)  # names used by `?=` self-checks

    def reachable(self, roots: tuple[str, ...]) -> set[str]:
        seen: set[str] = set()
        todo = [r for r in (*roots, *self.checked) if r in self.rules]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo += [c for rule in self.rules[name] for c in rule.calls if c in self.rules]
        return seen

    def unused(self, roots: tuple[str, ...]) -> list[Rule]:
        """The first clause of every rule no question (nor self-check) can reach."""
        reached = self.reachable(roots)
        return [clauses[0] for name, clauses in self.rules.items() if name not in reached]


def read_graph(files: tuple[Path, ...]) -> RuleGraph:
    graph = RuleGraph()
    for path in files:
        for line_no, clause in _clauses(path.read_text(encoding="utf-8")):
            if clause.startswith("?="):
                graph.checked |= set(CALL.findall(clause))
                continue
            head = HEAD.match(clause)
            if head is None:
                continue
            _, _, body = clause.partition(" if ")
            rule = Rule(head.group(1), path, line_no, set(CALL.findall(body)))
            graph.rules.setdefault(rule.name, []).append(rule)
    return graph


def _clauses(text: str) -> list[tuple[int, str]]:
    """(first line, text on one line) of each `;`-terminated clause; comments and the
    contents of strings blanked."""
    found: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = STRING.sub('""', raw).split("#", 1)[0].strip()
        if not line:
            continue
        if not current:
            start = number
        current.append(line)
        if line.endswith(";"):
            found.append((start, " ".join(current)))
            current = []
    return found
