"""Lints for `check`: risky group combinations and routes or pages the policy never mentions."""

from __future__ import annotations

from gateway.domain import ADMIN_GROUP, CSR_GROUP
from gateway.policy.engine import PolicyEngine
from gateway.settings import Settings


def lint(settings: Settings, engine: PolicyEngine) -> list[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for p in engine.current.files)
    warnings = []
    routed = {r.page for r in settings.routes}
    for name, page in settings.pages.items():
        if name not in routed and name != "select_user":
            warnings.append(f'page "{name}" is reached by no route')
        if not page.public and f'"{name}"' not in text:
            warnings.append(f'page "{name}" is mentioned by no policy rule: nobody may see it')
    warnings += csr_admin_warnings(settings)
    return warnings


def csr_admin_warnings(settings: Settings) -> list[str]:
    """R4: a CSR who is also an Administrator has more rights than intended."""
    seed = settings.directory.seed
    if seed is None or not seed.exists():
        return []
    import yaml

    data = yaml.safe_load(seed.read_text(encoding="utf-8")) or {}
    return [f'user "{u["username"]}" is both CSR and Administrator (R4): more rights than '
            "intended; while impersonating they still get only the CSR's grants"
            for u in data.get("users", [])
            if {CSR_GROUP, ADMIN_GROUP} <= set(u.get("groups", []))]
