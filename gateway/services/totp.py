"""The authenticator-app second factor of local accounts: enrol, check a code, recover.

Codes are RFC 6238 (pyotp: 6 digits, 30 s steps) accepted one step either side of now
(clock skew); a step once accepted is never accepted again (replay). Recovery codes are
single use and argon2-hashed like passwords. The secret is sealed at rest (services/sealing).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import pyotp
import segno
from argon2 import PasswordHasher

from gateway.directory.passwords import verify
from gateway.directory.totp import Hashed, SecondFactors, TotpCredential
from gateway.services.sealing import SealBroken, Sealer

STEP_SECONDS, DIGITS, WINDOW = 30, 6, 1
RECOVERY_CODES = 10
HINT = 2  # a recovery code's first letters, stored plain: one hash to check, not ten
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper
PENDING_SECONDS = 300  # password right, code not yet: how long the second page waits

Outcome = Literal["totp", "recovery", "totp_invalid", "totp_replayed", "recovery_used",
                  "mfa_not_enrolled"]
GOOD: frozenset[str] = frozenset({"totp", "recovery"})


def match_step(secret: str, code: str, now: float, window: int = WINDOW) -> int | None:
    """The time step whose code this is, within `window` steps of now; None if none."""
    if len(code) != DIGITS or not (code.isascii() and code.isdigit()):
        return None
    otp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(now // STEP_SECONDS)
    found = None
    for step in range(current - window, current + window + 1):  # no early exit: same time
        if hmac.compare_digest(otp.generate_otp(step), code):
            found = step
    return found


def normalise(code: str) -> str:
    """What a person types: spaces and dashes dropped, any case."""
    return "".join(c for c in code.lower() if c not in " -\t")


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def qr_svg(uri: str, title: str) -> str:
    """The otpauth URI as an inline SVG QR code (no script, no image request)."""
    return str(segno.make(uri, error="m").svg_inline(scale=5, border=2, title=title))


@dataclass(frozen=True)
class PendingLogin:
    """Between a right password and a right code: who, where to, until when."""

    username: str
    next: str
    client_ip: str
    expires: float
    break_glass: bool = False


class SecondFactor:
    """TOTP and recovery codes for local accounts, over the directory's store."""

    def __init__(self, store: SecondFactors, sealer: Sealer, issuer: str,
                 hasher: PasswordHasher) -> None:
        self.store, self.sealer, self.issuer, self.hasher = store, sealer, issuer, hasher

    def _secret(self, cred: TotpCredential) -> str:
        return self.sealer.open(cred.secret_sealed, f"totp:{cred.username}").decode()

    async def enabled(self, username: str) -> bool:
        cred = await self.store.get(username)
        return cred is not None and cred.enabled

    async def begin(self, username: str) -> str | None:
        """A new secret to scan, not yet active; None when one is enabled already."""
        secret = pyotp.random_base32()
        sealed = self.sealer.seal(secret.encode(), f"totp:{username}")
        return secret if await self.store.begin(username, sealed) else None

    async def pending_secret(self, username: str) -> str | None:
        cred = await self.store.get(username)
        if cred is None or cred.enabled:
            return None
        try:
            return self._secret(cred)
        except SealBroken:
            return None  # sealed under another key: the person starts again

    def uri(self, username: str, secret: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=self.issuer)

    async def confirm(self, username: str, code: str, now: float | None = None
                      ) -> list[str] | None:
        """The first right code enables the secret: the recovery codes, shown once."""
        secret = await self.pending_secret(username)
        step = match_step(secret, normalise(code), now or time.time()) if secret else None
        if step is None:
            return None
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        hashes = await self._hashes(codes)
        return codes if await self.store.confirm(username, step, hashes) else None

    async def new_codes(self, username: str) -> list[str]:
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        await self.store.replace_codes(username, await self._hashes(codes))
        return codes

    async def _hashes(self, codes: list[str]) -> list[Hashed]:
        return await asyncio.to_thread(lambda: [
            (normalise(c)[:HINT], self.hasher.hash(normalise(c))) for c in codes])

    async def check(self, username: str, code: str, now: float | None = None) -> Outcome:
        """A code of the authenticator app, or an unused recovery code."""
        cred = await self.store.get(username)
        if cred is None or not cred.enabled:
            return "mfa_not_enrolled"
        typed = normalise(code)
        if typed.isdigit():
            try:
                step = match_step(self._secret(cred), typed, now or time.time())
            except SealBroken:
                return "totp_invalid"
            if step is None:
                return "totp_invalid"
            return "totp" if await self.store.use_step(username, step) else "totp_replayed"
        if len(typed) != 10:
            return "totp_invalid"
        return await self._recovery(username, typed)

    async def _recovery(self, username: str, typed: str) -> Outcome:
        """One argon2 check whatever was typed (a dummy hash when no code starts so), so
        neither the time nor the cost tells which first letters exist."""
        found = await self.store.codes(username, typed[:HINT]) or [("", "", False)]
        for code_id, hashed, used in found:
            if await asyncio.to_thread(verify, self.hasher, hashed or None, typed) \
                    and code_id:
                if used or not await self.store.spend_code(code_id):
                    return "recovery_used"
                return "recovery"
        return "totp_invalid"

    async def codes_left(self, username: str) -> int:
        return sum(1 for _, _, used in await self.store.codes(username) if not used)

    async def remove(self, username: str) -> bool:
        return await self.store.remove(username)

    # -- the pending login: sealed into the second page's form, never a session --

    def seal_pending(self, pending: PendingLogin) -> str:
        body: dict[str, Any] = {"u": pending.username, "n": pending.next,
                                "ip": pending.client_ip, "exp": pending.expires,
                                "bg": pending.break_glass}
        return self.sealer.seal(orjson.dumps(body), "pending-login")

    def open_pending(self, token: str, client_ip: str, now: float | None = None
                     ) -> PendingLogin | None:
        """None when forged, expired or carried to another address."""
        try:
            body = orjson.loads(self.sealer.open(token, "pending-login"))
        except (SealBroken, orjson.JSONDecodeError):
            return None
        pending = PendingLogin(str(body["u"]), str(body["n"]), str(body["ip"]),
                               float(body["exp"]), bool(body.get("bg")))
        if pending.expires < (now or time.time()) or pending.client_ip != client_ip:
            return None
        return pending

    def pending_for(self, username: str, target: str, client_ip: str,
                    break_glass: bool) -> PendingLogin:
        return PendingLogin(username, target, client_ip, time.time() + PENDING_SECONDS,
                            break_glass)
