"""Shadow mode: re-decide recorded requests with a candidate policy, report what changes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.audit.query import read_records

if TYPE_CHECKING:
    from gateway.policy.tools import Bench

# Reasons decided before or after the policy: replaying them says nothing about the policy.
NOT_POLICY = {"bad_path", "spoofed_header", "malformed_request", "unauthenticated",
              "session_expired", "csrf_failed", "upstream_unavailable", "upstream_timeout",
              "upstream_busy", "body_too_large", "audit_unavailable", "method_override",
              "upgrade_refused", "dependency_unavailable", "session_store_unavailable"}


def replayable(record: dict[str, Any]) -> bool:
    return (record.get("event") == "request" and record.get("actor") is not None
            and record.get("page") is not None and record.get("reason") not in NOT_POLICY
            and not str(record.get("path") or "").startswith("/_gateway/"))


def replay(bench: Bench, audit_file: Path) -> int:
    """Prints every changed decision; exit 1 when any would change, 0 when none."""
    counts: Counter[str] = Counter()
    for record in read_records([audit_file]):
        if not replayable(record):
            continue
        counts["replayed"] += 1
        acting = record["user"] if record.get("csr") else None
        path = str(record["path"]).split("?", 1)[0]
        if acting and acting not in bench.directory.users:
            counts["skipped"] += 1
            continue
        if record["actor"] not in bench.directory.users:
            counts["skipped"] += 1
            continue
        now = bench.decide(record["actor"], acting, str(record["method"]), path)
        if now.decision != record.get("decision"):
            counts["changed"] += 1
            who = record["actor"] + (f" as {acting}" if acting else "")
            print(f"CHANGED {record.get('ts')} {who} {record['method']} {path}: "
                  f"{record.get('decision')}/{record.get('reason')} -> "
                  f"{now.decision}/{now.reason}")
    print(f"{counts['replayed']} replayed, {counts['changed']} would change, "
          f"{counts['skipped']} skipped (users not in the directory)")
    return 1 if counts["changed"] else 0
