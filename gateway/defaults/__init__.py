"""The demo configuration, policies and directory seed, shipped inside the package.

`config` and `policies` here are links to the repository's top-level folders, so there is
one copy to maintain; a wheel carries their contents.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO_CONFIG = HERE / "config" / "gateway.yaml"
POLICIES = HERE / "policies"
