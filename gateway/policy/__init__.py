"""Policy as code: Polar files decide page access, impersonation and admin actions."""

from gateway.policy.decision import Decision
from gateway.policy.engine import PolicyEngine, PolicyLoadError

__all__ = ["Decision", "PolicyEngine", "PolicyLoadError"]
