"""The access matrix: what each group may do on each page and admin area, and while acting.

Every cell is asked of the engine, as the gateway asks it, for a stand-in person who is in
just that group: the matrix shows what the policy grants per group, whoever is in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import jinja2
import orjson

from gateway.core import i18n
from gateway.core.areas import ADMIN_AREAS, admin_title
from gateway.core.assets import STATIC, TEMPLATES
from gateway.core.domain import BUILTIN_GROUPS, CUSTOMER, STAFF, Actor, User
from gateway.core.i18n import gettext

if TYPE_CHECKING:
    from gateway.policylab.harness import Harness

STAND_IN_COMPANY = "<company>"


@dataclass(frozen=True)
class Matrix:
    pages: list[str]  # columns: page names, then "admin:<area>"
    rows: dict[str, dict[str, str]]  # row label -> column -> "view+submit" | "view" | "-"
    titles: dict[str, str] = field(default_factory=dict)  # column -> what people call it

    def title(self, column: str) -> str:
        """What people call the column, in the reader's language where it is ours."""
        if column.startswith("admin:"):
            return admin_title(column[len("admin:"):])
        return self.titles.get(column, column)

    @staticmethod
    def label(row: str) -> str:
        """A row as read: "CSR as Buyer" in the reader's language; group names stay."""
        csr, sep, buyer = row.partition(" as ")
        return gettext("%(csr)s as %(buyer)s") % {"csr": csr, "buyer": buyer} if sep else row

    def showing(self, group: str | None) -> list[str]:
        """The row labels to show for one group (its own and its acting rows), or all."""
        if not group:
            return list(self.rows)
        return [label for label in self.rows
                if label == group or label.startswith(f"{group} as ")]


def page_actions(bench: Harness, page: str) -> list[str]:
    """The actions the routes (or the gateway's own page) can ask about, view first."""
    found = {r.action_for(m) for r in bench.routes.routes if r.spec.page == page
             for m in r.methods}
    if page == "select_user":
        found = {"view", "submit"}
    return sorted(found or {"view"}, key=lambda a: (a != "view", a))


def groups(bench: Harness) -> list[str]:
    """The built-in groups, then any other group someone in the directory is in."""
    seen = dict.fromkeys(BUILTIN_GROUPS)
    for user in bench.directory.users.values():
        seen.update(dict.fromkeys(user.groups))
    return list(seen)


def stand_in(group: str, kind: str = STAFF) -> User:
    """A person in just this group (not in the directory: never cached)."""
    return User(f"<{group}>", "", kind=kind, company=STAND_IN_COMPANY if kind == CUSTOMER
                else None, groups=(group,), assigned_companies=(STAND_IN_COMPANY,))


def _cell(bench: Harness, actor: Actor, column: str) -> str:
    if column.startswith("admin:"):
        area = column[len("admin:"):]
        allowed = [a for a in ("read", "manage")
                   if bench.engine.admin(actor, a, area, bench.directory).allowed]
    else:
        spec = bench.settings.pages[column]
        if column == "select_user":  # the gateway asks it as the real person
            actor = Actor(actor.user)
        allowed = [a for a in page_actions(bench, column)
                   if bench.engine.page(actor, a, spec, bench.directory).allowed]
    return "+".join(allowed) if allowed else "-"


def access_matrix(bench: Harness) -> Matrix:
    """One row per group; then one per (impersonator group, buyer group) pair the policy
    lets act, e.g. "CSR as Buyer". Remembered per policy snapshot: it depends only on the
    policy, the groups, and the configured pages and routes."""
    names = groups(bench)
    key = ("matrix", tuple(names), tuple(bench.settings.pages.items()),
           tuple(bench.settings.routes))
    memo = bench.engine.current.memo
    found = memo.get(key)
    if not isinstance(found, Matrix):
        found = memo[key] = _build(bench, names)
    return found


def _build(bench: Harness, names: list[str]) -> Matrix:
    columns = [p for p, spec in bench.settings.pages.items() if not spec.public]
    columns += [f"admin:{area}" for area in ADMIN_AREAS]
    rows: dict[str, dict[str, str]] = {}
    for group in names:
        rows[group] = {c: _cell(bench, Actor(stand_in(group)), c) for c in columns}
    for group in names:
        csr = stand_in(group)
        for buyer_group in names:
            buyer = stand_in(buyer_group, CUSTOMER)
            if bench.engine.impersonation(Actor(csr), buyer, bench.directory).allowed:
                rows[f"{group} as {buyer_group}"] = {
                    c: _cell(bench, Actor(csr, buyer), c) for c in columns}
    titles = {p: bench.settings.pages[p].title for p in columns if p in bench.settings.pages}
    titles.update({f"admin:{a}": admin_title(a, translate=False) for a in ADMIN_AREAS})
    return Matrix(columns, rows, titles)


def render(matrix: Matrix, fmt: str, group: str | None = None) -> str:
    if fmt == "json":
        return orjson.dumps({"pages": matrix.pages, "rows": matrix.rows,
                             "titles": matrix.titles}, option=orjson.OPT_INDENT_2).decode()
    if fmt == "html":
        return render_page(matrix, group)
    return render_text(matrix)


def render_text(matrix: Matrix) -> str:
    """Pages down, groups across (narrow enough for a terminal)."""
    labels = list(matrix.rows)
    first = max(len(p) for p in matrix.pages) + 2
    widths = [max([len(label)] + [len(matrix.rows[label][p]) for p in matrix.pages]) + 2
              for label in labels]
    lines = ["".ljust(first) + "".join(label.ljust(w) for label, w in zip(labels, widths,
                                                                           strict=True))]
    for page in matrix.pages:
        lines.append(page.ljust(first) + "".join(
            matrix.rows[label][page].ljust(w) for label, w in zip(labels, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def _templates() -> jinja2.Environment:
    return i18n.environment(TEMPLATES)


def render_html(matrix: Matrix, group: str | None = None) -> str:
    """Pages down, groups across, as the admin Groups page shows it (no filter form)."""
    return _templates().get_template("_matrix.html").render(
        matrix=matrix, labels=matrix.showing(group), cell=cell)


def render_page(matrix: Matrix, group: str | None = None) -> str:
    """A complete page that opens from a file: the admin look, its CSS inlined."""
    css = (STATIC / "gateway.css").read_text()
    return _templates().get_template("matrix_page.html").render(
        matrix=matrix, labels=matrix.showing(group), cell=cell, css=css, group=group or "")


def cell(value: str) -> dict[str, object]:
    """One cell as shown: allowed or not, the actions in words, and a spoken alternative."""
    actions = [] if value == "-" else value.split("+")
    words = ", ".join(actions)
    return {"allowed": bool(actions), "actions": words,
            "spoken": gettext("allowed: %(actions)s") % {"actions": words} if actions
            else gettext("not allowed")}

