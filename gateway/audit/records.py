"""One typed record per audit event: the key names, their types and meanings in one place.

Every line carries every key of AUDIT_KEYS, in that order (null when not applicable); the
keys an event gives beyond them follow in the order the caller gave them. A record says
which keys an event may give. Three things check it:

- mypy: `AuditLog.emit` is typed by `Emit` below, one overload per event, so an unknown
  event, a misspelled key, a key of another event or a wrong value type is a type error;
- strict mode (`CSRGW_AUDIT_STRICT=1`, set by the test suite, off in production): the
  gateway's log refuses a line whose event has no record or whose key its record lacks;
- docs/audit.md's key and event tables are generated from here
  (`python -m gateway.audit.doc --write docs/audit.md`) and a test fails when they are stale.

Adding an event (docs/audit.md, "Adding an event"): a TypedDict below, built from the
bases, whose docstring says when the line is written; its entry in RECORDS, in Event and
an overload in Emit; a meaning in MEANINGS for each new key. tests/unit/test_audit_records.py
names whatever is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol, TypedDict, Unpack, overload

STRICT_ENV = "CSRGW_AUDIT_STRICT"  # "1": refuse undeclared events and keys (tests)

# The contract: every line carries these keys in this order. Never reorder or rename.
AUDIT_KEYS = ("ts", "event", "request_id", "user", "actor", "csr", "company", "method", "path",
              "page", "action", "decision", "reason", "status", "duration_ms", "client_ip",
              "policy_rev", "impersonation_id", "impersonation_reason", "trace_id", "seq",
              "prev_hash", "hash")

Decision = Literal["allow", "deny"]


class Written(TypedDict):
    """Keys the log itself writes on every line; a caller never gives them."""

    ts: str
    event: str
    seq: int
    prev_hash: str
    hash: str


WRITTEN = tuple(Written.__annotations__)

# -- shared bases: groups of keys that several events give -------------------------------


class Outcome(TypedDict, total=False):
    """Why, as a reason code, and what happened, in words: any event may say these."""

    reason: str | None
    detail: str | None


class Verdict(Outcome, total=False):
    """An outcome that allowed or refused something."""

    decision: Decision | None


class Person(TypedDict, total=False):
    """Whose account it was and who acted."""

    user: str | None
    actor: str | None
    company: str | None


class Identity(Person, total=False):
    """A person, and the CSR and impersonation when a CSR acts for a buyer."""

    csr: str | None
    impersonation_id: str | None
    impersonation_reason: str | None
    impersonation_mode: str | None


class Exchange(TypedDict, total=False):
    """The HTTP request the event happened in."""

    request_id: str | None
    method: str | None
    path: str | None
    client_ip: str | None


class Answered(TypedDict, total=False):
    """The status sent back."""

    status: int | None


class Policed(TypedDict, total=False):
    """The policy that decided."""

    policy_rev: str | None


class Proof(TypedDict, total=False):
    """How the acting person authenticated."""

    auth_method: str | None
    amr: list[str] | None
    acr: str | None
    auth_time: int | None


class Forwarded(Identity, Exchange, Proof, Verdict, Policed, total=False):
    """A request for the shop: what the policy was asked and what it said."""

    page: str | None
    action: str | None
    state_changing: bool | None
    trace_id: str | None
    websocket: bool
    approval_id: str  # the four-eyes request this request filed, used or decided
    approver: str | None
    limit: str  # a volume limit this request passed
    limit_max: int
    limit_count: int


# -- one record per event ----------------------------------------------------------------


class Request(Forwarded, Answered, total=False):
    """every request, refused ones included (one line each)"""

    duration_ms: float | None
    outcome: str
    bytes_sent: int | None
    masked: dict[str, int]
    unmasked: list[str]


class RequestIntent(Forwarded, total=False):
    """before a state-changing request is forwarded, on disk first; its `request` line
    follows with `status` and `duration_ms`"""


class Login(Person, Exchange, Answered, Proof, Verdict, total=False):
    """a successful login (password, provider, or the password of a step-up)"""

    break_glass: bool | None


class LoginFailed(Person, Exchange, Answered, Verdict, total=False):
    """a refused login: wrong password, throttled, IP fence, the provider's refusal"""

    auth_method: str | None


class Logout(Identity, Exchange, Answered, Verdict, total=False):
    """a logout, or a session ended by the provider's back-channel logout"""

    auth_method: str | None


class SessionExpired(Person, Exchange, Outcome, total=False):
    """a request arrives on an idle or expired session"""


class Impersonation(Identity, Exchange, Proof, Verdict, Policed, total=False):
    """The keys of an impersonation's start, stop and end."""


class ImpersonationStart(Impersonation, total=False):
    """a CSR starts acting for a buyer"""


class ImpersonationStop(Impersonation, total=False):
    """the CSR stops acting: Logout Buyer, or logout while acting (`detail: logout`)"""


class ImpersonationEnd(Impersonation, total=False):
    """an impersonation ends otherwise: expiry, revocation, the CSR's session expired or
    account deactivated, the sweeper, the kill switch"""


class ImpersonationModeSwitch(Impersonation, total=False):
    """a CSR switched the running impersonation to write or read mode (`reason: ok`), or was
    refused (`write_not_allowed`, `reason_required`)"""

    mode: str
    mode_reason: str | None


class ImpersonationDenied(Identity, Exchange, Answered, Verdict, Policed, total=False):
    """a refused start of an impersonation"""


class PolicyReload(Outcome, Policed, total=False):
    """a new policy is serving"""

    trigger: str


class PolicyReloadFailed(PolicyReload, total=False):
    """a policy failed to load; the old one keeps serving"""

    file: str | None
    line: int | None


class AdminChange(Person, Exchange, Verdict, Policed, total=False):
    """any change through the admin API or pages, a user's own password or link, or the
    provider's groups applied to a user"""

    target: str
    action: str | None
    before: Any
    after: Any


class AuditStart(Outcome, total=False):
    """a process opens the file, or a new segment starts (SIGHUP reopen, recovery)"""

    prev_file_hash: str | None
    prev_file_seq: int | None
    chain: str
    torn_tail: int | None
    lost_lines: int | None


class AuditResumed(Outcome, total=False):
    """the sink writes again after a failure"""

    refused: int
    dropped_lines: int | None
    down_s: float


class Notification(Identity, Verdict, total=False):
    """the customer webhook after an impersonation was delivered (`reason: ok`) or gave up
    (`notify_failed`)"""

    attempts: int
    actions: int
    message: str  # what the webhook was told: impersonation_end, approval_granted, ...


class ApprovalEvent(Identity, Exchange, Verdict, Policed, total=False):
    """a four-eyes request for an impersonation changed state: requested, granted, denied or
    expired (`approver` where someone decided)"""

    approval_id: str
    approver: str | None


class ImpersonationLimit(Identity, Exchange, Verdict, Policed, total=False):
    """a CSR went past a volume limit (`decision: allow` in alert mode, `deny` in block
    mode)"""

    limit: str
    limit_max: int
    limit_count: int
    mode: str


class SecondFactorEvent(Person, Exchange, Verdict, total=False):
    """a local account's authenticator app (TOTP) enrolled or disabled by its owner, reset by
    an operator (`csr-gateway directory reset-totp`), its recovery codes renewed, or a
    recovery code used at login or step-up"""

    recovery_codes_left: int | None


SecondFactorEventName = Literal["totp_enrolled", "totp_disabled", "totp_reset",
                                "recovery_codes_renewed", "recovery_code_used"]
ApprovalEventName = Literal["approval_requested", "approval_granted", "approval_denied",
                            "approval_expired"]
Event = Literal["request", "login", "login_failed", "logout", "session_expired",
                "impersonation_start", "impersonation_stop", "impersonation_denied",
                "impersonation_end", "policy_reload", "policy_reload_failed", "admin_change",
                "audit_start", "notification", "request_intent", "audit_resumed",
                "impersonation_mode", "approval_requested", "approval_granted",
                "approval_denied", "approval_expired", "impersonation_limit",
                "totp_enrolled", "totp_disabled", "totp_reset", "recovery_codes_renewed",
                "recovery_code_used"]
ImpersonationEvent = Literal["impersonation_start", "impersonation_stop", "impersonation_end",
                             "impersonation_mode"]

RECORDS: dict[str, type[Any]] = {
    "request": Request,
    "login": Login,
    "login_failed": LoginFailed,
    "logout": Logout,
    "session_expired": SessionExpired,
    "impersonation_start": ImpersonationStart,
    "impersonation_stop": ImpersonationStop,
    "impersonation_denied": ImpersonationDenied,
    "impersonation_end": ImpersonationEnd,
    "policy_reload": PolicyReload,
    "policy_reload_failed": PolicyReloadFailed,
    "admin_change": AdminChange,
    "audit_start": AuditStart,
    "notification": Notification,
    "request_intent": RequestIntent,
    "audit_resumed": AuditResumed,
    "impersonation_mode": ImpersonationModeSwitch,
    "approval_requested": ApprovalEvent,
    "approval_granted": ApprovalEvent,
    "approval_denied": ApprovalEvent,
    "approval_expired": ApprovalEvent,
    "impersonation_limit": ImpersonationLimit,
    "totp_enrolled": SecondFactorEvent,
    "totp_disabled": SecondFactorEvent,
    "totp_reset": SecondFactorEvent,
    "recovery_codes_renewed": SecondFactorEvent,
    "recovery_code_used": SecondFactorEvent,
}
EVENTS = tuple(RECORDS)

Line = dict[str, Any]  # the record as written, every key filled


class Emit(Protocol):
    """`AuditLog.emit`: the event's name, then the keys its record declares."""

    @overload
    def __call__(self, event: Literal["request"], /, **fields: Unpack[Request]) -> Line: ...
    @overload
    def __call__(self, event: Literal["login"], /, **fields: Unpack[Login]) -> Line: ...
    @overload
    def __call__(self, event: Literal["login_failed"], /,
                 **fields: Unpack[LoginFailed]) -> Line: ...
    @overload
    def __call__(self, event: Literal["logout"], /, **fields: Unpack[Logout]) -> Line: ...
    @overload
    def __call__(self, event: Literal["session_expired"], /,
                 **fields: Unpack[SessionExpired]) -> Line: ...
    @overload
    def __call__(self, event: Literal["impersonation_start"], /,
                 **fields: Unpack[ImpersonationStart]) -> Line: ...
    @overload
    def __call__(self, event: Literal["impersonation_stop"], /,
                 **fields: Unpack[ImpersonationStop]) -> Line: ...
    @overload
    def __call__(self, event: Literal["impersonation_denied"], /,
                 **fields: Unpack[ImpersonationDenied]) -> Line: ...
    @overload
    def __call__(self, event: Literal["impersonation_end"], /,
                 **fields: Unpack[ImpersonationEnd]) -> Line: ...
    @overload
    def __call__(self, event: Literal["policy_reload"], /,
                 **fields: Unpack[PolicyReload]) -> Line: ...
    @overload
    def __call__(self, event: Literal["policy_reload_failed"], /,
                 **fields: Unpack[PolicyReloadFailed]) -> Line: ...
    @overload
    def __call__(self, event: Literal["admin_change"], /,
                 **fields: Unpack[AdminChange]) -> Line: ...
    @overload
    def __call__(self, event: Literal["audit_start"], /,
                 **fields: Unpack[AuditStart]) -> Line: ...
    @overload
    def __call__(self, event: Literal["notification"], /,
                 **fields: Unpack[Notification]) -> Line: ...
    @overload
    def __call__(self, event: Literal["request_intent"], /,
                 **fields: Unpack[RequestIntent]) -> Line: ...
    @overload
    def __call__(self, event: Literal["audit_resumed"], /,
                 **fields: Unpack[AuditResumed]) -> Line: ...
    @overload
    def __call__(self, event: Literal["impersonation_mode"], /,
                 **fields: Unpack[ImpersonationModeSwitch]) -> Line: ...
    @overload
    def __call__(self, event: Literal["approval_requested"], /,
                 **fields: Unpack[ApprovalEvent]) -> Line: ...
    @overload
    def __call__(self, event: Literal["approval_granted"], /,
                 **fields: Unpack[ApprovalEvent]) -> Line: ...
    @overload
    def __call__(self, event: Literal["approval_denied"], /,
                 **fields: Unpack[ApprovalEvent]) -> Line: ...
    @overload
    def __call__(self, event: Literal["approval_expired"], /,
                 **fields: Unpack[ApprovalEvent]) -> Line: ...
    @overload
    def __call__(self, event: Literal["impersonation_limit"], /,
                 **fields: Unpack[ImpersonationLimit]) -> Line: ...
    @overload
    def __call__(self, event: Literal["totp_enrolled"], /,
                 **fields: Unpack[SecondFactorEvent]) -> Line: ...
    @overload
    def __call__(self, event: Literal["totp_disabled"], /,
                 **fields: Unpack[SecondFactorEvent]) -> Line: ...
    @overload
    def __call__(self, event: Literal["totp_reset"], /,
                 **fields: Unpack[SecondFactorEvent]) -> Line: ...
    @overload
    def __call__(self, event: Literal["recovery_codes_renewed"], /,
                 **fields: Unpack[SecondFactorEvent]) -> Line: ...
    @overload
    def __call__(self, event: Literal["recovery_code_used"], /,
                 **fields: Unpack[SecondFactorEvent]) -> Line: ...


# Every key's meaning, one line each: the core keys in line order, then the others.
MEANINGS: dict[str, str] = {
    "ts": "when the line was written, RFC 3339 UTC with milliseconds "
          "(`2026-11-22T16:01:02.345Z`)",
    "event": "what happened (see Events)",
    "request_id": "the id sent upstream as `X-Request-Id`; ties event lines to their request",
    "user": "whose account the action affected: the buyer while a CSR acts for them",
    "actor": "the real person who acted: the CSR while impersonating",
    "csr": "**the CSR column**: the CSR's login on every line of an action a CSR took for a "
           "buyer, else null",
    "company": "the affected user's company",
    "method": "the request's method",
    "path": "the canonical path the policy decided on, query included with secrets redacted",
    "page": "the route's page the policy was asked about",
    "action": "the route's action the policy was asked about; on `admin_change`, the change "
              "made",
    "decision": "`allow` or `deny` (null for events where no decision applies)",
    "reason": "stable snake_case code: why (see Reasons)",
    "status": "HTTP status sent to the client",
    "duration_ms": "time spent in the gateway, including the upstream",
    "client_ip": "the client address (from `X-Forwarded-For` only behind a trusted proxy)",
    "policy_rev": "content hash of the policy files that decided",
    "impersonation_id": "id of the running impersonation (same on its start, requests and stop)",
    "impersonation_reason": "the reason/ticket the CSR gave when starting",
    "trace_id": "the W3C trace (32 hex digits) the request belongs to: continued from a "
                "trusted proxy's `traceparent`, else started by the gateway, and sent to the "
                "shop in its `traceparent`; the same on every line written while handling that "
                "request, null on lines outside a request (`audit_start`, a SIGHUP reload). "
                "Added after the first contract, before `seq`",
    "seq": "position in this file's chain, from 0 at `audit_start`",
    "prev_hash": "`hash` of the previous line (`000…0` at the start of a new chain)",
    "hash": "SHA-256 (hex) over this line's canonical JSON without `hash` (keys sorted)",
    "impersonation_mode": "`read` or `write` on every line of an impersonated request and on "
                          "impersonation events, null otherwise (docs/impersonation.md)",
    "outcome": "`completed`; `aborted` when the client or shop went away mid-stream; `refused` "
               "when the HTTP parser refused the request",
    "bytes_sent": "body bytes sent to the client",
    "state_changing": "true for actions that change state: placing an order, submitting a form",
    "websocket": "true on a request upgraded to a WebSocket",
    "detail": "human words, never secrets",
    "auth_method": "how the acting person authenticated: `password`, `oidc` or `totp` "
                   "(a local password and an authenticator-app or recovery code)",
    "amr": "how the acting person authenticated, as RFC 8176 methods: the provider's `amr` "
           "claim (e.g. `[\"pwd\", \"otp\"]`), or `[\"pwd\", \"otp\"]` after the "
           "gateway's own password and authenticator code",
    "acr": "the provider's authentication context class (`acr` claim), when it sent one; "
           "`login.oidc.mfa_acr_values` says which count as a second factor",
    "auth_time": "when the acting person last authenticated, Unix seconds",
    "break_glass": "true for a password login allowed only because the user keeps a break-glass "
                   "password while sign-in with the provider is required",
    "trigger": "what started the reload: `sighup`, `file_change`, `admin_api`, `push`",
    "file": "the policy file that failed to load",
    "line": "the line in that file",
    "target": "what the change touched: `users`, `groups`, `companies`, `assignments`, "
              "`sessions`, `policy`",
    "before": "the value before the change (null when created)",
    "after": "the value after the change (null when removed)",
    "prev_file_hash": "the previous segment's last hash (its head), null on a new chain",
    "prev_file_seq": "the previous segment's last seq",
    "chain": "which chain this file belongs to: host and configured path",
    "torn_tail": "bytes of a cut-off last line found when the file was opened",
    "lost_lines": "lines that never reached a descriptor that failed for good",
    "refused": "requests refused while the sink was down",
    "dropped_lines": "lines dropped while the sink was down, past the memory cap",
    "down_s": "seconds the sink was down",
    "mode": "the mode a CSR asked for (`read` or `write`); on `impersonation_limit`, the "
            "limit's mode (`alert` or `block`)",
    "approval_id": "the four-eyes request an approval line is about",
    "approver": "who granted or denied the request (null while it waits or when it expired "
                "undecided)",
    "limit": "the volume limit passed: `buyers_per_hour`, `actions_per_hour` or "
             "`impersonations_per_day`",
    "limit_max": "the limit's configured maximum",
    "limit_count": "the count that passed it",
    "message": "on `notification`: the event the webhook was told of (`impersonation_end`, "
               "`approval_requested`, `impersonation_limit`, ...)",
    "mode_reason": "the reason the CSR gave for the switch",
    "masked": "on a request to a page with masking rules while a CSR acts for a buyer: how many "
              "values of each field were masked, e.g. `{\"card\": 2, \"email\": 1}`, `{}` when "
              "none were found",
    "unmasked": "the fields the policy's `unmask` let through, when any",
    "recovery_codes_left": "unused recovery codes the account has after the event",
    "attempts": "deliveries of the webhook tried",
    "actions": "requests the CSR made during the impersonation",
}


def declared(record: type[Any]) -> tuple[str, ...]:
    """The keys a record declares: core keys in line order, then the others in MEANINGS order
    (a key MEANINGS lacks goes last)."""
    keys = record.__required_keys__ | record.__optional_keys__
    order = {key: i for i, key in enumerate(MEANINGS)}
    return tuple(sorted(keys, key=lambda k: order.get(k, len(order))))


DECLARED: dict[str, frozenset[str]] = {
    event: frozenset(declared(record)) for event, record in RECORDS.items()}


class UndeclaredAuditKey(TypeError):
    """A line whose event has no record, or with a key its record does not declare."""


def check(event: str, fields: Mapping[str, object]) -> None:
    """Strict mode: raise UndeclaredAuditKey naming the event and the keys it lacks."""
    allowed = DECLARED.get(event)
    if allowed is None:
        raise UndeclaredAuditKey(
            f"audit event {event!r} has no record: declare it in gateway/audit/records.py "
            "(a TypedDict, RECORDS, Event, Emit)")
    unknown = sorted(fields.keys() - allowed)
    if unknown:
        keys = ", ".join(repr(k) for k in unknown)
        raise UndeclaredAuditKey(
            f"audit event {event!r}: key {keys} not declared in its record "
            f"{RECORDS[event].__name__} (gateway/audit/records.py)")
