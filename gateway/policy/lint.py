"""Lints for `check`: risky group combinations and routes or pages the policy never mentions."""

from __future__ import annotations

import re

from gateway.domain import ADMIN_GROUP, BUILTIN_GROUPS, CSR_GROUP
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
    warnings += unused_grants(settings, text)
    warnings += [f"polar: {w.splitlines()[0]}" for w in engine.current.warnings]
    return warnings


GRANT = re.compile(r'^\s*(acting_grant|grant)\("([^"]+)",\s*"([^"]+)"', re.MULTILINE)


def unused_grants(settings: Settings, text: str) -> list[str]:
    """Grants that can never apply: an unknown page, or a group nobody can be in."""
    groups = set(BUILTIN_GROUPS) | _seed_groups(settings)
    out = []
    for fact, group, page in GRANT.findall(text):
        if page not in settings.pages:
            out.append(f'{fact}("{group}", "{page}", ...) is never used: no page "{page}"')
        elif group not in groups:
            out.append(f'{fact}("{group}", "{page}", ...) is never used: no group "{group}"')
    return out


def _seed_groups(settings: Settings) -> set[str]:
    seed = settings.directory.seed
    if seed is None or not seed.exists():
        return set()
    import yaml

    data = yaml.safe_load(seed.read_text(encoding="utf-8")) or {}
    return {g["name"] for g in data.get("groups", [])}


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
