"""The only module that imports oso: loads policy snapshots, swaps them, answers questions."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("POLAR_TIMEOUT_MS", "1000")  # a runaway rule must not stall the loop

from oso import Oso, Variable
from polar.exceptions import OsoError, PolarRuntimeError

from gateway.domain import Actor, DirectorySnapshot, Page, User
from gateway.policy.views import POLAR_CLASSES, AdminResource, PolarPage, PolarUser, polar_actor

CACHE_LIMIT = 200_000
# Warnings that mean the policy cannot be what its author meant: refused like errors.
FATAL_WARNINGS = ("Unknown specializer",)
_LOCATION = re.compile(r"at line (\d+), column (\d+)(?: of file (\S+?))?[:\s]")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    policy_rev: str


class PolicyLoadError(Exception):
    """A policy that failed to load: file, line and the engine's message."""

    def __init__(self, message: str, file: str = "", line: int = 0) -> None:
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line}: {message}" if file else message)


@dataclass
class PolicySnapshot:
    oso: Oso
    rev: str
    files: tuple[Path, ...]
    cache: dict[tuple[Any, ...], Decision] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def policy_files(directory: Path) -> tuple[Path, ...]:
    return tuple(sorted(directory.glob("*.polar")))


def content_rev(files: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_snapshot(directory: Path, constants: Mapping[str, object]) -> PolicySnapshot:
    """Load every file into a fresh Oso in one call; `?=` assertions run during load."""
    files = policy_files(directory)
    if not files:
        raise PolicyLoadError(f"no *.polar files in {directory}")
    oso = Oso()
    for name, cls in POLAR_CLASSES.items():
        oso.register_class(cls, name=name)
    for name, value in constants.items():
        oso.register_constant(value, name)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):  # Polar prints warnings; keep them ours
            oso.load_files([str(p) for p in files])
    except (OsoError, OSError) as exc:
        raise _load_error(exc, files) from exc
    warnings = [w.strip() for w in printed.getvalue().split("[warning]") if w.strip()]
    fatal = [w for w in warnings if any(f in w for f in FATAL_WARNINGS)]
    if fatal:
        raise _load_error(Exception(fatal[0]), files)
    return PolicySnapshot(oso, content_rev(files), files, warnings=warnings)


def _load_error(exc: Exception, files: tuple[Path, ...]) -> PolicyLoadError:
    text = str(exc)
    found = _LOCATION.search(text + " ")
    file = found.group(3) if found and found.group(3) else ""
    if not file and len(files) == 1:
        file = str(files[0])
    line = int(found.group(1)) if found else 0
    return PolicyLoadError(text.splitlines()[0] if text else type(exc).__name__, file, line)


class PolicyEngine:
    """Holds the current snapshot; a reload builds a new one and swaps only if it loads."""

    def __init__(self, directory: Path, constants: Mapping[str, object] | None = None) -> None:
        self.directory = directory
        self.constants = dict(constants or {})
        self.current = build_snapshot(directory, self.constants)
        self.last_error: PolicyLoadError | None = None

    @property
    def rev(self) -> str:
        return self.current.rev

    def reload(self) -> PolicySnapshot:
        """Swap in a freshly loaded snapshot; on failure keep serving the old one and raise."""
        try:
            snapshot = build_snapshot(self.directory, self.constants)
        except PolicyLoadError as exc:
            self.last_error = exc
            raise
        self.current, self.last_error = snapshot, None
        return snapshot

    def changed_on_disk(self) -> bool:
        try:
            return content_rev(policy_files(self.directory)) != self.current.rev
        except OSError:
            return False

    def page(self, actor: Actor, action: str, page: Page,
             directory: DirectorySnapshot | None = None) -> Decision:
        snap = self.current
        key = _key("page", directory, actor.user, actor.acting_as, action, page.name)
        found = snap.cache.get(key) if key else None
        if found is None:
            found = self._ask_page(snap, actor, action, page, directory)
            _remember(snap, key, found)
        return found

    def _ask_page(self, snap: PolicySnapshot, actor: Actor, action: str, page: Page,
                  directory: DirectorySnapshot | None) -> Decision:
        try:
            allowed = snap.oso.is_allowed(polar_actor(actor, directory), action, PolarPage(page))
        except (OsoError, PolarRuntimeError, RuntimeError):
            return Decision(False, "policy_error", snap.rev)
        if allowed:
            return Decision(True, "ok", snap.rev)
        sensitive = actor.acting_as is not None and page.sensitive
        return Decision(False, "sensitive_page" if sensitive else "policy_denied", snap.rev)

    def impersonation(self, actor: Actor, buyer: User,
                      directory: DirectorySnapshot | None = None) -> Decision:
        """May this actor act as this buyer now? Denials name the policy's reason."""
        snap = self.current
        key = _key("impersonate", directory, actor.user, actor.acting_as, buyer)
        found = snap.cache.get(key) if key else None
        if found is None:
            found = self._ask_impersonation(snap, actor, buyer, directory)
            _remember(snap, key, found)
        return found

    def _ask_impersonation(self, snap: PolicySnapshot, actor: Actor, buyer: User,
                           directory: DirectorySnapshot | None) -> Decision:
        polar = polar_actor(actor, directory)
        target = PolarUser(buyer, directory)
        try:
            if snap.oso.is_allowed(polar, "impersonate", target):
                return Decision(True, "ok", snap.rev)
            results = snap.oso.query_rule("impersonation_refused", polar, target,
                                          Variable("why"))
            why = next((r["bindings"]["why"] for r in results), "impersonation_not_allowed")
        except (OsoError, PolarRuntimeError, RuntimeError):
            return Decision(False, "policy_error", snap.rev)
        return Decision(False, str(why), snap.rev)

    def admin(self, actor: Actor, action: str, resource: str,
              directory: DirectorySnapshot | None = None) -> Decision:
        snap = self.current
        try:
            allowed = snap.oso.is_allowed(polar_actor(actor, directory), action,
                                          AdminResource(resource))
        except (OsoError, PolarRuntimeError, RuntimeError):
            return Decision(False, "policy_error", snap.rev)
        return Decision(allowed, "ok" if allowed else "policy_denied", snap.rev)


def ask(engine: PolicyEngine, rule: str, *args: object) -> list[dict[str, object]]:
    """Bindings of a rule query, for the explain tool; `None` arguments become variables.

    View objects are converted here so callers never touch oso themselves.
    """
    converted = [Variable(f"v{i}") if a is None else a for i, a in enumerate(args)]
    try:
        return [dict(r["bindings"]) for r in engine.current.oso.query_rule(rule, *converted)]
    except (OsoError, PolarRuntimeError, RuntimeError):
        return []


def _facts(user: User, directory: DirectorySnapshot | None) -> int:
    """The facts id of a user taken from this very snapshot (0: not from it, don't cache)."""
    if directory is None or directory.users.get(user.username) is not user:
        return 0
    return directory.facts.get(user.username, 0)


def _key(kind: str, directory: DirectorySnapshot | None, *people_then_rest: Any
         ) -> tuple[Any, ...] | None:
    """A cache key built from facts ids: a change in anything the policy reads about these
    people (or their companies) gives a new id and misses; other users' changes do not.
    None when an id is unknown: then the question is asked every time."""
    key: list[Any] = [kind]
    for item in people_then_rest:
        if isinstance(item, User):
            facts = _facts(item, directory)
            if not facts:
                return None
            key.append(facts)
        else:
            key.append(item)
    return tuple(key)


def _remember(snap: PolicySnapshot, key: tuple[Any, ...] | None, decision: Decision) -> None:
    if key is None or decision.reason == "policy_error":
        return  # never cache a failure: the next request asks again
    if len(snap.cache) >= CACHE_LIMIT:
        snap.cache.clear()
    snap.cache[key] = decision
