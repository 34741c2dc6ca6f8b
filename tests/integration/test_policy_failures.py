"""A policy that fails while deciding denies, through the real gateway, and says why."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.gateway import audit_lines, edited_policies, gw_of, login


@pytest.mark.parametrize(("old", "new"), [
    ("    name = page.name and\n    group in actor.groups and",
     "    name = page.name and actor.no_such_attribute = 1 and\n    group in actor.groups and"),
    ("    name = page.name and\n    group in actor.groups and",
     "    name = page.name and runaway(name) and\n    group in actor.groups and"),
], ids=["missing-attribute", "runaway-rule"])
async def test_evaluation_error_denies_and_is_audited(make_gateway, tmp_path: Path, old: str,
                                                     new: str) -> None:
    """An error while evaluating (or a rule that never ends) denies with policy_error, fast,
    and the audit line says so; nothing is forwarded."""
    policies = edited_policies(tmp_path, old, new)
    if "runaway" in new:
        with (policies / "pages.polar").open("a") as fh:
            fh.write("\nrunaway(x) if runaway(x);\n")
    client = await make_gateway(policies_dir=policies)
    await login(client, "buyer-alice")
    started = time.perf_counter()
    resp = await client.get("/cart")
    assert resp.status == 403 and time.perf_counter() - started < 2
    line = audit_lines(client)[-1]
    assert line["decision"] == "deny" and line["reason"] == "policy_error"
    assert line["policy_rev"] == gw_of(client).policy.rev


