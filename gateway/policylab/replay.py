"""Shadow mode: re-decide recorded requests with a candidate policy, report what would change."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.audit.query import read_records
from gateway.core.errors import GatewayError

if TYPE_CHECKING:
    from gateway.policylab.harness import Harness

# Reasons the policy gives (or the absence of a question, for public pages). Anything else
# (bad path, CSRF, upstream down, expiry...) was decided outside the policy: not replayed.
POLICY_REASONS = {"ok", "public_page", "policy_denied", "sensitive_page", "policy_error",
                  "already_impersonating", "not_impersonator", "csr_inactive", "self",
                  "buyer_inactive", "not_customer", "buyer_is_privileged", "not_assigned",
                  "company_no_impersonation", "no_consent"}


def replayable(bench: Harness, record: dict[str, Any]) -> bool:
    """A request the policy decided: a known actor, a page, a reason of the policy's."""
    if record.get("event") != "request" or not record.get("actor") or not record.get("page"):
        return False
    if record.get("reason") not in POLICY_REASONS:
        return False
    try:  # gateway paths only when they are questions (Select User, admin area)
        bench.question(str(record.get("method")), _path(record))
    except GatewayError:
        return False
    return True


def _path(record: dict[str, Any]) -> str:
    return str(record.get("path") or "").split("?", 1)[0]


def replay(bench: Harness, audit_file: Path) -> int:
    """Prints every changed decision; exit 1 when any would change, 0 when none."""
    counts: Counter[str] = Counter()
    for record in read_records([audit_file]):
        if not replayable(bench, record):
            continue
        counts["replayed"] += 1
        actor = str(record["actor"])
        acting = str(record["user"]) if record.get("csr") and record.get("user") else None
        if any(name not in bench.directory.users for name in (actor, acting) if name):
            counts["skipped"] += 1
            continue
        path, method = _path(record), str(record["method"])
        now = bench.decide(actor, acting, method, path)
        was = f"{record.get('decision')}/{record.get('reason')}"
        who = actor + (f" as {acting}" if acting else "")
        if now.decision != record.get("decision"):
            counts["changed"] += 1
            print(f"CHANGED {record.get('ts')} {who} {method} {path}: "
                  f"{was} -> {now.decision}/{now.reason}")
        elif now.reason != record.get("reason") and now.reason != "public_page":
            counts["reason"] += 1
            print(f"REASON  {record.get('ts')} {who} {method} {path}: "
                  f"{was} -> {now.decision}/{now.reason}")
    print(f"{counts['replayed']} replayed under policy {bench.engine.rev}: "
          f"{counts['changed']} decision(s) would change, {counts['reason']} reason(s) "
          f"would change, {counts['skipped']} skipped (people not in the directory)")
    return 1 if counts["changed"] else 0
