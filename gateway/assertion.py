"""Signed identity assertions for the upstream (JWT, RFC 8693 `act`) and the published JWKS."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from gateway.settings import AssertionSettings

PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: PrivateKey

    def public_jwk(self, algorithm: str) -> dict[str, Any]:
        public = self.private.public_key()
        converter: dict[str, Any] = {"EdDSA": OKPAlgorithm, "RS256": RSAAlgorithm,
                                     "ES256": ECAlgorithm}
        jwk: dict[str, Any] = converter[algorithm].to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": algorithm}


def _generate(algorithm: str) -> PrivateKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def load_keys(settings: AssertionSettings) -> list[SigningKey]:
    """PEM keys in keys_dir, newest file last (it signs); generates one when there is none."""
    directory = settings.keys_dir
    directory.mkdir(parents=True, exist_ok=True)
    files = sorted(directory.glob("*.pem"), key=lambda p: (p.stat().st_mtime, p.name))
    if not files:
        key = _generate(settings.algorithm)
        path = directory / f"signing-{int(time.time())}.pem"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
        files = [path]
    keys = []
    for path in files:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        kid = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        keys.append(SigningKey(kid, private))  # type: ignore[arg-type]
    return keys


class AssertionSigner:
    """Signs one short-lived assertion per identity and reuses it while it is fresh."""

    def __init__(self, settings: AssertionSettings) -> None:
        self.settings = settings
        self.keys = [] if settings.algorithm == "HS256" else load_keys(settings)
        self._cache: dict[tuple[Any, ...], tuple[float, str]] = {}

    def reload_keys(self) -> None:
        """Rotation: every PEM in keys_dir is published; the newest signs from now on."""
        if self.settings.algorithm != "HS256":
            self.keys = load_keys(self.settings)
            self._cache.clear()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk(self.settings.algorithm) for k in self.keys]}

    def sign(self, *, sub: str, company: str | None, csr: str | None, sid: str,
             reason: str | None, policy_rev: str, groups: list[str]) -> str:
        key = (sub, company, csr, sid, reason, policy_rev)
        now = time.time()
        cached = self._cache.get(key)
        if cached and cached[0] - now > self.settings.ttl_seconds / 2:
            return cached[1]
        claims: dict[str, Any] = {
            "iss": self.settings.issuer, "aud": self.settings.audience, "sub": sub,
            "company": company, "groups": groups,
            "sid": hashlib.sha256(sid.encode()).hexdigest()[:24],
            "policy_rev": policy_rev, "iat": int(now), "exp": int(now) + self.settings.ttl_seconds,
        }
        if csr:
            claims["act"] = {"sub": csr}
            claims["impersonation_reason"] = reason
        token = self._encode(claims)
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = (claims["exp"], token)
        return token

    def _encode(self, claims: dict[str, Any]) -> str:
        if self.settings.algorithm == "HS256":
            return jwt.encode(claims, self.settings.hs256_secret or "", algorithm="HS256")
        signer = self.keys[-1]
        return jwt.encode(claims, signer.private, algorithm=self.settings.algorithm,
                          headers={"kid": signer.kid})
