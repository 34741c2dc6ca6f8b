"""`csr-gateway check`: configuration, policies and lints, every problem at once."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from gateway.config.load import ConfigError, load_settings, sqlite_file
from gateway.config.yamlsrc import KeyPath, load
from gateway.core.settings import Settings
from gateway.directory.passwords import MIN_MEMORY_KIB, MIN_TIME_COST
from gateway.policy import PolicyEngine, PolicyLoadError
from gateway.policy.constants import policy_constants
from gateway.policylab.lint import lint
from gateway.runtime import tracing as otel
from gateway.services.assertion import KeyFileError, key_files, read_key


def check_config(path: str, show: bool = False) -> int:
    """0 when the configuration and policy load (warnings may follow), 1 when they don't."""
    try:
        settings = load_settings(path)
        raise_if_unusable(path, settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {path}", file=sys.stderr)
        return 1
    if show:
        from gateway.config.doc import effective_yaml

        print(effective_yaml(settings), end="")
    try:
        engine = PolicyEngine(settings.policies_dir, policy_constants(settings))
    except PolicyLoadError as exc:
        print(f"{exc}", file=sys.stderr)
        print(f"policy in {settings.policies_dir} does not load", file=sys.stderr)
        return 1
    warnings = lint(settings, engine) + weak_password_cost(settings)
    for warning in warnings:
        print(f"warning: {warning}")
    print(f"{path}: ok ({len(settings.routes)} routes, {len(settings.pages)} pages, "
          f"policy {engine.rev}, {len(warnings)} warning(s))")
    return 0


def raise_if_unusable(path: str, settings: Settings) -> None:
    """What `run` will need of the file system, proven now: ConfigError, one line each."""
    src = load(path)
    problems: list[tuple[KeyPath, str | None]] = [
        (("state_dir",), _writable_dir(settings.state_dir)),
        (("policies_dir",), _readable_dir(settings.policies_dir)),
    ]
    if settings.audit.sink in ("file", "both"):
        problems.append((("audit", "path"), _writable_file(Path(settings.audit.path))))
    sqlite = sqlite_file(settings.directory.url)
    if sqlite is not None:
        problems.append((("directory", "url"), _writable_file(sqlite)))
    if settings.directory.seed is not None:
        problems.append((("directory", "seed"), _readable_file(settings.directory.seed)))
    if settings.assertion.algorithm != "HS256":
        problems.append((("assertion", "keys_dir"), _keys(settings)))
    problems.append((("tracing", "otlp_endpoint"), otel.missing(settings.tracing)))
    for where, message in problems:
        if message:
            src.problem(where, message)
    src.raise_if_problems()


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable_dir(path: Path) -> str | None:
    """Proven by creating a file there (root passes os.access on a read-only mount)."""
    target = path if path.exists() else _existing_ancestor(path)
    if not target.is_dir():
        return f"{target} is not a directory, so {path} cannot be used"
    try:
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as exc:
        verb = "writable" if target == path else "creatable"
        return f"{path} is not {verb} ({exc.strerror or exc})"
    return None


def _writable_file(path: Path) -> str | None:
    if path.is_dir():
        return f"{path} is a directory, not a file"
    if path.exists():
        if not os.access(path, os.W_OK):
            return f"{path} is not writable"
        try:
            with path.open("ab"):
                pass
        except OSError as exc:
            return f"{path} is not writable ({exc.strerror or exc})"
        return None
    problem = _writable_dir(path.parent)
    return f"cannot create {path}: {problem}" if problem else None


def _readable_dir(path: Path) -> str | None:
    if not path.is_dir():
        return f"{path} is not a directory"
    if not os.access(path, os.R_OK | os.X_OK):
        return f"{path} is not readable"
    return None


def _readable_file(path: Path) -> str | None:
    try:
        with path.open("rb"):
            return None
    except OSError as exc:
        return f"cannot read {path} ({exc.strerror or exc})"


def _keys(settings: Settings) -> str | None:
    """Readable signing keys, or a folder where `run` can create the first one."""
    folder = settings.assertion.keys_dir
    if not folder.exists():
        return _writable_dir(folder)
    problem = _readable_dir(folder)
    if problem:
        return problem
    files = key_files(folder)
    if not files:
        return _writable_dir(folder)
    for file in files:
        try:
            read_key(file, settings.assertion.algorithm)
        except (KeyFileError, OSError) as exc:
            return str(exc)
    return None


def weak_password_cost(settings: Settings) -> list[str]:
    """A cost below OWASP's floor for argon2id is for tests, never for a shop."""
    d = settings.directory
    if d.password_memory_kib < MIN_MEMORY_KIB or d.password_time_cost < MIN_TIME_COST:
        return [f"directory.password_*: argon2 cost ({d.password_time_cost} passes, "
                f"{d.password_memory_kib} KiB) is below OWASP's minimum "
                f"({MIN_TIME_COST} passes, {MIN_MEMORY_KIB} KiB): for tests only"]
    return []
