"""The accessibility audit of the browser tests: axe-core from npm (tests/a11y/), injected by
Playwright into the page, its default rules; serious and critical findings fail."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from tests.support.gateway import IN_CI, ROOT

HERE = ROOT / "tests" / "a11y"
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
FAILING = ("serious", "critical")


def ensure_installed() -> None:
    """`npm ci` from the lock file when axe-core is not there yet."""
    if AXE.exists():
        return
    if shutil.which("npm") is None:
        if IN_CI:
            pytest.fail("npm is missing (axe-core comes from the npm registry)")
        pytest.skip("npm is missing")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True,
                   timeout=300, capture_output=True)


async def audit(page: Any, name: str, within: str | None = None,
                not_ours: tuple[str, ...] = ()) -> list[str]:
    """axe's serious and critical violations on the page (or inside `within`), one line
    each: page, rule, impact, what to fix, where. `not_ours` names rules about a document
    the browser made itself (its JSON viewer), not the gateway. The page's context must
    bypass CSP (the gateway's pages allow only their own scripts)."""
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "async ([within, off]) => await axe.run(within ? {include: [within]} : document,"
        " {resultTypes: ['violations'],"
        "  rules: Object.fromEntries(off.map(id => [id, {enabled: false}]))})",
        [within, list(not_ours)])
    return [f"{name}: {v['id']} ({v['impact']}): {v['help']} at "
            + "; ".join(" ".join(n["target"]) for n in v["nodes"][:4])
            for v in result["violations"] if v["impact"] in FAILING]
