"""A policy answer: allowed or not, the reason (the audit `reason`), the policy revision."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    policy_rev: str
