"""`csr-gateway check`: configuration, policies and lints, every problem at once."""

from __future__ import annotations

import sys

from gateway.config import ConfigError, load_settings
from gateway.policy import PolicyEngine, PolicyLoadError


def check_config(path: str) -> int:
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {path}", file=sys.stderr)
        return 1
    try:
        engine = PolicyEngine(settings.policies_dir,
                              {"REQUIRE_CONSENT": settings.impersonation.require_consent})
    except PolicyLoadError as exc:
        print(f"{exc}", file=sys.stderr)
        return 1
    from gateway.policy.lint import lint

    warnings = lint(settings, engine)
    for warning in warnings:
        print(f"warning: {warning}")
    print(f"{path}: ok ({len(settings.routes)} routes, {len(settings.pages)} pages, "
          f"policy {engine.rev}, {len(warnings)} warning(s))")
    return 0
