"""`csr-gateway check`: configuration, policies and lints, every problem at once."""

from __future__ import annotations

import sys

from gateway.config import ConfigError, load_settings
from gateway.policy import PolicyEngine, PolicyLoadError


def check_config(path: str) -> int:
    """0 when the configuration and policy load (warnings may follow), 1 when they don't."""
    from gateway.app import policy_constants

    try:
        settings = load_settings(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {path}", file=sys.stderr)
        return 1
    try:
        engine = PolicyEngine(settings.policies_dir, policy_constants(settings))
    except PolicyLoadError as exc:
        print(f"{exc}", file=sys.stderr)
        print(f"policy in {settings.policies_dir} does not load", file=sys.stderr)
        return 1
    from gateway.policy.lint import lint

    warnings = lint(settings, engine)
    for warning in warnings:
        print(f"warning: {warning}")
    print(f"{path}: ok ({len(settings.routes)} routes, {len(settings.pages)} pages, "
          f"policy {engine.rev}, {len(warnings)} warning(s))")
    return 0
