"""The only module that imports oso: loads policy snapshots, swaps them, answers questions."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oso import Oso, Variable
from polar.exceptions import OsoError

from gateway.core.domain import Actor, DirectorySnapshot, Page, User
from gateway.policy.cache import decision_key, remember
from gateway.policy.decision import Decision
from gateway.policy.rulegraph import read_graph
from gateway.policy.views import (
    POLAR_CLASSES,
    AdminResource,
    ApprovalRequest,
    PolarPage,
    PolarUser,
    polar_actor,
)

log = logging.getLogger("csr_gateway")

# Polar reads both per query. A decision takes well under a millisecond, so a runaway rule
# is stopped (and denies) after half a second instead of Polar's 30 s. Not lower: the limit
# is wall-clock time, and on an overloaded host a sub-millisecond decision was seen to take
# a hundred times longer (descheduled), which must not turn into a spurious denial.
os.environ.setdefault("POLAR_TIMEOUT_MS", "500")
# Polar's query log prints every object's repr to stdout on every request: never while
# serving. `csr-gateway policy explain --trace` shows it for one question, at a terminal.
IGNORED_POLAR_LOG = os.environ.pop("POLAR_LOG", None)

# The questions the gateway asks (docs/policy.md): one rule each, so a question only ever
# matches its own rules and no class dispatch is needed at query time.
PAGE_RULE = "allow_page"                  # (Principal, action, Page)
IMPERSONATION_RULE = "allow_impersonation"  # (Principal, User)
REFUSAL_RULE = "impersonation_refused"      # (Principal, User, why): the denial's reason
MFA_RULE = "requires_mfa"                  # (Principal, User): a second factor is needed
ADMIN_RULE = "allow_admin"                # (Principal, action, AdminResource)
WRITE_RULE = "allow_write"                # (Principal, User): a read-only one may write
UNMASK_RULE = "unmask"                    # (Principal, User, field): show it unmasked
APPROVAL_RULE = "requires_approval"        # (Principal, User): a second person must agree
APPROVER_RULE = "may_approve"              # (Principal, ApprovalRequest)
COMPANY_ACCESS_RULE = "may_view_company_access"  # (Principal, company id)
QUESTIONS = (PAGE_RULE, IMPERSONATION_RULE, REFUSAL_RULE, ADMIN_RULE, MFA_RULE)
# Asked too, but a policy may leave them out: then nobody writes from read-only, everything
# configured stays masked, no impersonation needs an approval and nobody may approve.
OPTIONAL_QUESTIONS = (WRITE_RULE, UNMASK_RULE, APPROVAL_RULE, APPROVER_RULE,
                      COMPANY_ACCESS_RULE)
SIGNATURES = {PAGE_RULE: "allow_page(actor, action, page)",
              IMPERSONATION_RULE: "allow_impersonation(actor, buyer)",
              REFUSAL_RULE: "impersonation_refused(actor, buyer, why)",
              ADMIN_RULE: "allow_admin(actor, action, resource)",
              MFA_RULE: "requires_mfa(actor, buyer)"}

# Warnings that mean the policy cannot be what its author meant: refused like errors.
FATAL_WARNINGS = ("Unknown specializer",)
# oso's advice for policies written around `allow`; ours asks named questions instead.
IGNORED_WARNINGS = ("Your policy does not contain an allow rule",)
_LOCATION = re.compile(r"at line (\d+), column (\d+)(?: of file (\S+?))?[:\s]")


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
    # Derived answers that depend only on this snapshot and the key (the access matrix).
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)


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
        rev = content_rev(files)
        with contextlib.redirect_stdout(printed):  # Polar prints warnings; keep them ours
            oso.load_files([str(p) for p in files])
        if content_rev(files) != rev:  # an editor still writing: the watcher comes back
            raise PolicyLoadError("policy files changed while loading", str(directory))
    except (OsoError, OSError) as exc:
        raise _load_error(exc, files) from exc
    warnings = [w.strip() for w in printed.getvalue().split("[warning]")
                if w.strip() and not w.strip().startswith(IGNORED_WARNINGS)]
    fatal = [w for w in warnings if any(f in w for f in FATAL_WARNINGS)]
    if fatal:
        raise _load_error(Exception(fatal[0]), files)
    missing = [q for q in QUESTIONS if q not in read_graph(files).rules]
    if missing:
        raise PolicyLoadError("the gateway asks " + ", ".join(SIGNATURES[q] for q in missing)
                              + ": no rule defines it", str(directory))
    return PolicySnapshot(oso, rev, files, warnings=warnings)


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
        if IGNORED_POLAR_LOG:
            log.warning("POLAR_LOG is ignored: Polar's query log prints object reprs to stdout "
                        "on every request; use `csr-gateway policy explain --trace`")
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

    def _decided(self, key: tuple[Any, ...] | None, ask: Callable[..., Decision],
                 *args: Any) -> Decision:
        """The cached answer under `key` (facts ids, see cache.py), else ask Polar."""
        snap = self.current
        found = snap.cache.get(key) if key else None
        if found is None:
            found = ask(snap, *args)
            remember(snap.cache, key, found)
        return found

    def page(self, actor: Actor, action: str, page: Page,
             directory: DirectorySnapshot | None = None) -> Decision:
        key = decision_key("page", directory, actor.user, actor.acting_as, action, page.name)
        return self._decided(key, self._ask_page, actor, action, page, directory)

    def _ask_page(self, snap: PolicySnapshot, actor: Actor, action: str, page: Page,
                  directory: DirectorySnapshot | None) -> Decision:
        try:
            allowed = _holds(snap, PAGE_RULE, polar_actor(actor, directory), action,
                             PolarPage(page))
        except Exception as exc:  # fail closed: any error in evaluation denies
            return _error(snap, PAGE_RULE, exc)
        if allowed:
            return Decision(True, "ok", snap.rev)
        sensitive = actor.acting_as is not None and page.sensitive
        return Decision(False, "sensitive_page" if sensitive else "policy_denied", snap.rev)

    def impersonation(self, actor: Actor, buyer: User,
                      directory: DirectorySnapshot | None = None) -> Decision:
        """May this actor act as this buyer now? Denials name the policy's reason."""
        key = decision_key("impersonate", directory, actor.user, actor.acting_as, buyer)
        return self._decided(key, self._ask_impersonation, actor, buyer, directory)

    def _ask_impersonation(self, snap: PolicySnapshot, actor: Actor, buyer: User,
                           directory: DirectorySnapshot | None) -> Decision:
        polar = polar_actor(actor, directory)
        target = PolarUser(buyer, directory)
        try:
            if _holds(snap, IMPERSONATION_RULE, polar, target):
                return Decision(True, "ok", snap.rev)
            results = snap.oso.query_rule(REFUSAL_RULE, polar, target, Variable("why"))
            why = next((r["bindings"]["why"] for r in results), "impersonation_not_allowed")
        except Exception as exc:  # fail closed
            return _error(snap, IMPERSONATION_RULE, exc)
        return Decision(False, why if isinstance(why, str) else "impersonation_not_allowed",
                        snap.rev)

    def requires_mfa(self, actor: Actor, buyer: User,
                     directory: DirectorySnapshot | None = None) -> bool:
        """Does acting for this buyer need a second factor? An error says yes (fail closed)."""
        snap = self.current
        try:
            return _holds(snap, MFA_RULE, polar_actor(actor, directory),
                          PolarUser(buyer, directory))
        except Exception as exc:
            if f"undefined rule `{MFA_RULE}`" in str(exc):
                return False  # a policy without the rule asks for no second factor
            log.exception("policy rule %s failed; asking for MFA", MFA_RULE)
            return True

    def allow_write(self, actor: Actor, buyer: User,
                    directory: DirectorySnapshot | None = None) -> Decision:
        """May the CSR (as themselves) switch to write mode for this buyer? No rule: no."""
        key = decision_key("write", directory, actor.user, actor.acting_as, buyer)
        return self._decided(key, self._ask_optional, WRITE_RULE, "write_not_allowed",
                             actor, buyer, directory)

    def unmask(self, actor: Actor, buyer: User, field: str,
               directory: DirectorySnapshot | None = None) -> bool:
        """May the CSR see this masked field of the buyer's? No rule or an error: masked."""
        key = decision_key("unmask", directory, actor.user, actor.acting_as, buyer, field)
        return self._decided(key, self._ask_optional, UNMASK_RULE, "masked", actor, buyer,
                             directory, field).allowed

    def _ask_optional(self, snap: PolicySnapshot, rule: str, refused: str, actor: Actor,
                      buyer: User, directory: DirectorySnapshot | None,
                      *more: object) -> Decision:
        try:
            allowed = _holds(snap, rule, polar_actor(actor, directory),
                             PolarUser(buyer, directory), *more)
        except Exception as exc:
            if f"undefined rule `{rule}`" in str(exc):
                return Decision(False, refused, snap.rev)  # a policy without the rule
            return _error(snap, rule, exc)
        return Decision(allowed, "ok" if allowed else refused, snap.rev)
    def requires_approval(self, actor: Actor, buyer: User,
                          directory: DirectorySnapshot | None = None) -> bool:
        """Does acting for this buyer need another person's approval? An error says yes."""
        return self._optional(APPROVAL_RULE, True, polar_actor(actor, directory),
                              PolarUser(buyer, directory))

    def may_approve(self, approver: Actor, requester: User, buyer: User, reason: str,
                    directory: DirectorySnapshot | None = None) -> bool:
        """May this person approve that request? An error says no (fail closed). The
        gateway refuses self-approval before it asks."""
        request = ApprovalRequest(PolarUser(requester, directory), PolarUser(buyer, directory),
                                  buyer.company, reason)
        return self._optional(APPROVER_RULE, False, polar_actor(approver, directory), request)

    def company_access(self, actor: Actor, company: str,
                       directory: DirectorySnapshot | None = None) -> bool:
        """May this person see every staff access to their company's buyers?"""
        return self._optional(COMPANY_ACCESS_RULE, False, polar_actor(actor, directory),
                              company)

    def _optional(self, rule: str, on_error: bool, *args: object) -> bool:
        """A question a policy may leave out (then it never holds); errors answer on_error."""
        try:
            return _holds(self.current, rule, *args)
        except Exception as exc:
            if f"undefined rule `{rule}`" in str(exc):
                return False
            log.error("policy rule %s failed (%s); answering %s", rule, type(exc).__name__,
                      on_error)
            return on_error

    def admin(self, actor: Actor, action: str, resource: str,
              directory: DirectorySnapshot | None = None) -> Decision:
        key = decision_key("admin", directory, actor.user, actor.acting_as, action, resource)
        return self._decided(key, self._ask_admin, actor, action, resource, directory)

    def _ask_admin(self, snap: PolicySnapshot, actor: Actor, action: str, resource: str,
                   directory: DirectorySnapshot | None) -> Decision:
        try:
            allowed = _holds(snap, ADMIN_RULE, polar_actor(actor, directory), action,
                             AdminResource(resource))
        except Exception as exc:  # fail closed
            return _error(snap, ADMIN_RULE, exc)
        return Decision(allowed, "ok" if allowed else "policy_denied", snap.rev)


def _holds(snap: PolicySnapshot, rule: str, *args: object) -> bool:
    """One proof is enough: stop at the first result."""
    return bool(snap.oso.query_rule_once(rule, *args))


def _error(snap: PolicySnapshot, rule: str, exc: Exception) -> Decision:
    """Fail closed. The log names the rule and error type only: Polar's message may carry
    object reprs, and those stay out of the logs."""
    log.error("policy error in %s (policy %s): %s", rule, snap.rev, type(exc).__name__)
    return Decision(False, "policy_error", snap.rev)


def ask(engine: PolicyEngine, rule: str, *args: object) -> list[dict[str, object]]:
    """Bindings of a rule query, for the explain tool; `None` arguments become variables."""
    converted = [Variable(f"v{i}") if a is None else a for i, a in enumerate(args)]
    try:
        return [dict(r["bindings"]) for r in engine.current.oso.query_rule(rule, *converted)]
    except Exception:  # a tool question that errs simply has no answer
        return []


def traced(engine: PolicyEngine, rule: str, *args: object) -> tuple[bool, list[str]]:
    """One question with Polar's query log on (`policy explain --trace`): rules tried,
    attribute lookups, result. For an author at a terminal, never the serving process."""
    printed = io.StringIO()
    os.environ["POLAR_LOG"] = "info"
    try:
        with contextlib.redirect_stdout(printed):
            holds = bool(engine.current.oso.query_rule_once(rule, *args))
    except Exception as exc:
        return False, [*printed.getvalue().splitlines(), f"error: {exc}"]
    finally:
        del os.environ["POLAR_LOG"]
    lines = [line.replace("[oso][info]", "", 1).rstrip() for line in
             printed.getvalue().splitlines() if line.startswith("[oso][info]")]
    return holds, lines
