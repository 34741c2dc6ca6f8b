"""The access matrix: which group may do what on which page, alone and while impersonating."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from gateway.domain import BUILTIN_GROUPS, CSR_GROUP, Actor, User

if TYPE_CHECKING:
    from gateway.policy.tools import Bench



@dataclass(frozen=True)
class Matrix:
    pages: list[str]
    rows: dict[str, dict[str, str]]  # row label -> page -> "view+submit" | "view" | "-"


def page_actions(bench: Bench, page: str) -> list[str]:
    """The actions the routes of a page can ask about (view first)."""
    found = {r.action_for(m) for r in bench.routes.routes if r.spec.page == page
             for m in r.methods}
    return sorted(found or {"view"}, key=lambda a: (a != "view", a))


def _cell(bench: Bench, actor: Actor, page: str) -> str:
    spec = bench.settings.pages[page]
    allowed = [a for a in page_actions(bench, page)
               if bench.engine.page(actor, a, spec, bench.directory).allowed]
    return "+".join(allowed) if allowed else "-"


def access_matrix(bench: Bench) -> Matrix:
    """One row per group, plus 'CSR acting as <buyer>' rows for the seed's customers."""
    pages = [p for p, spec in bench.settings.pages.items() if not spec.public]
    rows: dict[str, dict[str, str]] = {}
    for group in BUILTIN_GROUPS:
        actor = Actor(User(f"<{group}>", "", groups=(group,)), directory_version=-2)
        rows[group] = {p: _cell(bench, actor, p) for p in pages}
    csrs = [u for u in bench.directory.users.values() if CSR_GROUP in u.groups]
    for csr in csrs[:1]:
        for buyer in bench.directory.users.values():
            if buyer.kind == "customer" and buyer.company in csr.assigned_companies:
                actor = Actor(csr, buyer, directory_version=bench.directory.version)
                rows[f"{csr.username} as {buyer.username}"] = {
                    p: _cell(bench, actor, p) for p in pages}
                break
    return Matrix(pages, rows)


def render(matrix: Matrix, fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps({"pages": matrix.pages, "rows": matrix.rows},
                            option=orjson.OPT_INDENT_2).decode()
    if fmt == "html":
        return render_html(matrix)
    width = max(len(r) for r in matrix.rows) + 2
    cols = [max([len(p)] + [len(cells[p]) for cells in matrix.rows.values()])
            for p in matrix.pages]
    head = " " * width + " ".join(p.ljust(c) for p, c in zip(matrix.pages, cols, strict=True))
    lines = [head]
    for label, cells in matrix.rows.items():
        lines.append(label.ljust(width) + " ".join(
            cells[p].ljust(c) for p, c in zip(matrix.pages, cols, strict=True)))
    return "\n".join(lines)


def render_html(matrix: Matrix) -> str:
    head = "".join(f"<th scope='col'>{html.escape(p)}</th>" for p in matrix.pages)
    body = "".join(
        f"<tr><th scope='row'>{html.escape(label)}</th>" + "".join(
            f"<td class='{'yes' if v != '-' else 'no'}'>{html.escape(v)}</td>"
            for v in (cells[p] for p in matrix.pages)) + "</tr>"
        for label, cells in matrix.rows.items())
    return (f"<table class='matrix'><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")
