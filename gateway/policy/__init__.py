"""Policy as code: Polar files decide page access, impersonation and admin actions."""

from gateway.policy.engine import Decision, PolicyEngine, PolicyLoadError

__all__ = ["Decision", "PolicyEngine", "PolicyLoadError"]
