"""Decision-table rows that ask the policy a yes/no question instead of deciding a request.

`{persona: csr-carol, ask: requires_approval, as: buyer-bob, tags: [approval_required],
expect: yes}` and `{persona: admin-ann, ask: may_approve, requester: csr-carol,
as: buyer-bob, expect: yes}`. `tags` replaces the buyer's tags for that row, so a table
can say what a tagged buyer needs without changing the directory. A may_approve row
whose persona is the requester is a "no" whatever the policy says, as in the gateway.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from gateway.core.domain import Actor, User

if TYPE_CHECKING:
    from gateway.policylab.harness import Harness, Verdict

ANSWERS = ("yes", "no")

NEEDS = {"requires_approval": ("persona", "as"), "may_approve": ("persona", "requester", "as")}
KEYS = {"persona", "as", "ask", "requester", "tags", "expect", "note"}


class BadRow(ValueError):
    """A question row that cannot be read (tables.py reports it with file and line)."""


def question_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The row's question, persona, buyer, requester, tags and expected answer."""
    ask = str(row["ask"])
    if ask not in NEEDS:
        raise BadRow(f"ask must be one of {', '.join(NEEDS)}, got {ask!r}")
    unknown = sorted(set(row) - KEYS)
    missing = sorted({*NEEDS[ask], "expect"} - set(row))
    if unknown or missing:
        raise BadRow("; ".join([f"unknown key {k!r}" for k in unknown] +
                                   [f"missing key {k!r}" for k in missing]))
    expect = row["expect"]
    if isinstance(expect, bool):  # YAML reads a bare yes/no as a boolean
        expect = "yes" if expect else "no"
    if expect not in ANSWERS:
        raise BadRow(f"expect must be yes or no for a question, got {expect!r}")
    tags = row.get("tags")
    if tags is not None and not isinstance(tags, list):
        raise BadRow(f"tags must be a list, got {tags!r}")
    return {"persona": str(row["persona"]), "acting_as": str(row["as"]),
            "expect": str(expect), "ask": ask, "requester": row.get("requester"),
            "tags": tuple(str(t) for t in tags) if tags is not None else None}


def answer(bench: Harness, case: Any) -> bool:
    """The policy's answer, as the gateway asks it."""
    person = bench.user(case.persona)
    assert case.acting_as is not None
    buyer: User = bench.user(case.acting_as)
    if case.tags is not None:
        buyer = dataclasses.replace(buyer, tags=case.tags)
    me = Actor(person, directory_version=bench.directory.version)
    if case.ask == "requires_approval":
        return bench.engine.requires_approval(me, buyer, bench.directory)
    requester = bench.user(str(case.requester))
    if requester.username == person.username:
        return False  # the gateway refuses self-approval before it asks
    return bench.engine.may_approve(me, requester, buyer, "", bench.directory)


def check_question(bench: Harness, case: Any) -> Verdict | str:
    """The answer when it matches the row (a tables.Case), else the difference."""
    from gateway.policylab.harness import UnknownUser, Verdict  # the harness imports tables

    try:
        got = "yes" if answer(bench, case) else "no"
    except UnknownUser as exc:
        return str(exc)
    if got == case.expect:
        return Verdict(got, str(case.ask), None, None)
    return f"expected {case.expect}, got {got}"
