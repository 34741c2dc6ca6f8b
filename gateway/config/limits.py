"""Reads `impersonation.limits`, `notify_on` and `approval_minutes`: each problem with its key."""

from __future__ import annotations

from typing import Any

from gateway.config.yamlsrc import Source
from gateway.core.settings import LIMIT_WINDOWS as WINDOWS
from gateway.core.settings import ImpersonationSettings, VolumeLimit

MODES = ("alert", "block")
MOMENTS = ("start", "end")


def volume_limits(src: Source, raw: Any) -> tuple[VolumeLimit, ...]:
    """`{buyers_per_hour: {max: 20, mode: block}, ...}` -> VolumeLimits (none when absent)."""
    where = ("impersonation", "limits")
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        src.problem(where, "must be a mapping of limit name to {max, mode}")
        return ()
    found = []
    for name, spec in raw.items():
        if name not in WINDOWS:
            src.problem((*where, name), f"unknown limit (expected one of: "
                        f"{', '.join(WINDOWS)})")
            continue
        limit = _limit(src, (*where, name), str(name), spec)
        if limit is not None:
            found.append(limit)
    return tuple(found)


def _limit(src: Source, where: tuple[str, ...], name: str, spec: Any) -> VolumeLimit | None:
    if not isinstance(spec, dict):
        src.problem(where, "must be a mapping {max: N, mode: alert|block}")
        return None
    unknown = sorted(set(spec) - {"max", "mode"})
    for key in unknown:
        src.problem((*where, key), "unknown key (expected one of: max, mode)")
    most, mode = spec.get("max"), spec.get("mode", "alert")
    ok = not unknown
    if isinstance(most, bool) or not isinstance(most, int) or most < 1:
        src.problem((*where, "max"), f"must be a whole number of at least 1, got {most!r}")
        ok = False
    if mode not in MODES:
        src.problem((*where, "mode"), f"{mode!r} is not one of {', '.join(MODES)}")
        ok = False
    return VolumeLimit(name, int(most), str(mode)) if ok else None  # type: ignore[arg-type]


def check(src: Source, imp: ImpersonationSettings) -> None:
    """The plain keys that parse but cannot work."""
    if imp.approval_minutes < 1:
        src.problem(("impersonation", "approval_minutes"),
                    f"must be at least 1, got {imp.approval_minutes}")
    for i, moment in enumerate(imp.notify_on):
        if moment not in MOMENTS:
            src.problem(("impersonation", "notify_on", i),
                        f"{moment!r} is not one of {', '.join(MOMENTS)}")
