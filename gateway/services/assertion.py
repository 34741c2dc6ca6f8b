"""Signed identity assertions for the upstream (JWT, RFC 8693 `act`) and the published JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from gateway.core.settings import AssertionSettings

log = logging.getLogger("csr_gateway")
PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
FIRST_KEY = "signing-initial.pem"
MIN_HS256_SECRET = 32  # bytes: RFC 7518 section 3.2 wants a key at least as long as the hash
CONVERTERS: dict[str, Any] = {"EdDSA": OKPAlgorithm, "RS256": RSAAlgorithm,
                              "ES256": ECAlgorithm}
THUMBPRINT_MEMBERS = {"OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n"),
                      "EC": ("crv", "kty", "x", "y")}


class KeyFileError(ValueError):
    """A file in keys_dir that cannot sign with the configured algorithm."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    path: Path
    private: PrivateKey
    jwk: dict[str, Any]


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: the key's id, the same wherever the public key is known."""
    members = {name: jwk[name] for name in THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _generate(algorithm: str) -> PrivateKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def _fits(private: object, algorithm: str) -> TypeGuard[PrivateKey]:
    if algorithm == "EdDSA":
        return isinstance(private, ed25519.Ed25519PrivateKey)
    if algorithm == "RS256":
        return isinstance(private, rsa.RSAPrivateKey) and private.key_size >= 2048
    return isinstance(private, ec.EllipticCurvePrivateKey) and \
        isinstance(private.curve, ec.SECP256R1)


def read_key(path: Path, algorithm: str) -> SigningKey:
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if not _fits(private, algorithm):
        raise KeyFileError(f"{path}: a {type(private).__name__} cannot sign {algorithm} "
                           "(EdDSA: Ed25519; RS256: RSA >= 2048 bits; ES256: P-256)")
    public = private.public_key()
    jwk: dict[str, Any] = CONVERTERS[algorithm].to_jwk(public, as_dict=True)
    kid = thumbprint(jwk)
    return SigningKey(kid, path, private, {**jwk, "kid": kid, "use": "sig", "alg": algorithm})


def _create_first_key(directory: Path, algorithm: str) -> None:
    """One key for the demo, even when several workers start at once: the first link wins."""
    pem = _generate(algorithm).private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())
    temp = directory / f".{FIRST_KEY}.{secrets.token_hex(6)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    try:
        os.link(temp, directory / FIRST_KEY)
    except FileExistsError:
        pass  # another worker made it first: everyone signs with that one
    finally:
        temp.unlink()


def key_files(directory: Path) -> list[Path]:
    """Oldest first by modification time (then name): the last one signs."""
    return sorted(directory.glob("*.pem"), key=lambda p: (p.stat().st_mtime, p.name))


def load_keys(settings: AssertionSettings) -> list[SigningKey]:
    """Every PEM key in keys_dir, newest last; generates one when there is none."""
    directory = settings.keys_dir
    directory.mkdir(parents=True, exist_ok=True)
    if not key_files(directory):
        _create_first_key(directory, settings.algorithm)
    keys = [read_key(path, settings.algorithm) for path in key_files(directory)]
    if not keys:
        raise KeyFileError(f"{directory}: no signing key")
    return keys


class AssertionSigner:
    """Signs one short-lived assertion per identity and reuses it while it is fresh."""

    def __init__(self, settings: AssertionSettings) -> None:
        self.settings = settings
        if settings.algorithm == "HS256" and \
                len((settings.hs256_secret or "").encode()) < MIN_HS256_SECRET:
            raise KeyFileError(f"assertion.hs256_secret: HS256 needs a secret of at least "
                               f"{MIN_HS256_SECRET} bytes")
        self.keys = [] if settings.algorithm == "HS256" else load_keys(settings)
        self._cache: dict[tuple[Any, ...], tuple[float, str]] = {}

    def reload_keys(self) -> bool:
        """Rotation: every PEM in keys_dir is published; the newest signs from now on.

        A bad file keeps the current keys (logged, False): signing never stops.
        """
        if self.settings.algorithm == "HS256":
            return True
        try:
            keys = load_keys(self.settings)
        except (KeyFileError, OSError) as exc:
            log.error("signing keys not reloaded, the current ones stay: %s", exc)
            return False
        self.keys, self._cache = keys, {}
        log.info("signing keys reloaded: %s sign(s), published %s", keys[-1].kid,
                 ", ".join(k.kid for k in keys))
        return True

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(k.jwk) for k in self.keys]}

    def sign(self, *, sub: str, company: str | None, csr: str | None, sid: str,
             reason: str | None, policy_rev: str, groups: list[str],
             amr: tuple[str, ...] = (), auth_time: int | None = None,
             mode: str | None = None, acr: str = "") -> str:
        key = (sub, company, csr, sid, reason, policy_rev, tuple(groups), amr, auth_time, mode,
               acr)
        now = time.time()
        cached = self._cache.get(key)
        if cached and cached[0] - now > self.settings.ttl_seconds / 2:
            return cached[1]
        claims: dict[str, Any] = {
            "iss": self.settings.issuer, "aud": self.settings.audience, "sub": sub,
            "company": company, "groups": groups, "sid": session_handle(sid),
            "policy_rev": policy_rev, "iat": int(now), "exp": int(now) + self.settings.ttl_seconds,
        }
        if csr:
            # how the CSR proved who they are (amr/acr/auth_time), for the shop to weigh
            claims["act"] = {"sub": csr, **({"amr": list(amr)} if amr else {}),
                             **({"acr": acr} if acr else {}),
                             **({"auth_time": auth_time} if auth_time else {})}
            claims["impersonation_reason"] = reason
            claims["impersonation_mode"] = mode or "write"  # read: the gateway refuses writes
        token = self.encode(claims)
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = (claims["exp"], token)
        return token

    def encode(self, claims: dict[str, Any]) -> str:
        """Any claims signed with the current key (also used for webhook summaries)."""
        if self.settings.algorithm == "HS256":
            return jwt.encode(claims, self.settings.hs256_secret or "", algorithm="HS256")
        signer = self.keys[-1]
        return jwt.encode(claims, signer.private, algorithm=self.settings.algorithm,
                          headers={"kid": signer.kid})




def session_handle(sid: str) -> str:
    """Stable per session, useless as a credential: the shop may correlate, never replay."""
    return hashlib.sha256(sid.encode()).hexdigest()[:24]
