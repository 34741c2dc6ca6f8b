"""Configuration values from the environment: `${NAME}` references and CSRGW_ overrides.

`${NAME}` (or `${NAME:-default}`) may stand anywhere in a string value of the YAML file.
`CSRGW_<SECTION>__<KEY>=value` sets `<section>.<key>`; `CSRGW_<KEY>=value` sets a top-level
key (only the names the configuration knows, so CSRGW_SMTP_HOST and the like are left alone).
Values from the environment are typed on use: `port: ${PORT}` is a number when the field is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import yaml

from gateway.config.yamlsrc import KeyPath, Source

PREFIX = "CSRGW_"
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class FromEnv(str):
    """Text that came from the environment, converted to the field's type when it is read."""

    def typed(self) -> Any:
        try:
            return yaml.safe_load(self) if self.strip() else self
        except yaml.YAMLError:
            return str(self)


def apply(src: Source, top_level: set[str], environ: Mapping[str, str] | None = None) -> None:
    """Expand references, then overlay overrides, recording a problem for each unset name."""
    env = os.environ if environ is None else environ
    if isinstance(src.data, dict):
        src.data = _expand(src, src.data, (), env)
        _override(src, top_level, env)


def _expand(src: Source, value: Any, path: KeyPath, env: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(src, v, (*path, k), env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(src, v, (*path, i), env) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        src.problem(path, f"environment variable {name} is not set")
        return ""
    return FromEnv(REFERENCE.sub(one, value))


def _override(src: Source, top_level: set[str], env: Mapping[str, str]) -> None:
    for name, raw in sorted(env.items()):
        if not name.startswith(PREFIX):
            continue
        parts = [p.lower() for p in name[len(PREFIX):].split("__")]
        if len(parts) == 1 and parts[0] not in top_level:
            continue
        if not all(parts):
            src.problem((), f"{name}: expected CSRGW_SECTION__KEY or CSRGW_KEY")
            continue
        node = src.data
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        parsed = FromEnv(raw).typed()
        node[parts[-1]] = parsed if isinstance(parsed, (list, dict)) else FromEnv(raw)
        src.lines.setdefault(tuple(parts), src.line(tuple(parts)))


__all__ = ["PREFIX", "FromEnv", "apply"]
