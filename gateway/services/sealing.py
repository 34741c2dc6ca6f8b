"""Sealing small secrets at rest (AES-256-GCM), and the key that seals them.

The key is `login.totp.secret_key` (base64 of 32 bytes, `${CSRGW_TOTP_KEY}` in the deploy
files), else a key generated once into the state directory. Every sealed value is bound to
what it belongs to (the associated data, e.g. the username), so a sealed secret copied to
another user's row does not open there.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
KEY_FILE = "totp.key"  # in state_dir when no key is configured
NONCE_BYTES = 12


class SealBroken(ValueError):
    """A sealed value that does not open with this key and this associated data."""


def decode_key(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional (`openssl rand -base64 32` fits)."""
    cleaned = "".join(text.split())
    padded = cleaned + "=" * (-len(cleaned) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("is not base64") from exc
    if len(raw) != KEY_BYTES:
        raise ValueError(f"must decode to {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def key_problem(text: str) -> str | None:
    """What is wrong with a configured key, in words (for the configuration's errors)."""
    try:
        decode_key(text)
    except ValueError as exc:
        return f"{exc} (make one with: openssl rand -base64 32)"
    return None


def load_key(configured: str | None, state_dir: Path) -> bytes:
    """The configured key, else the one in state_dir (made on first need; of workers
    starting together, the first link wins and every one reads that)."""
    if configured:
        return decode_key(configured)
    path = state_dir / KEY_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        temp = state_dir / f".{KEY_FILE}.{secrets.token_hex(6)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode() + "\n")
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    return decode_key(path.read_text(encoding="utf-8"))


class Sealer:
    """AES-256-GCM with a random nonce per value: `nonce || ciphertext+tag`, base64."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plain: bytes, bound_to: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plain, bound_to.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, bound_to: str) -> bytes:
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], bound_to.encode())
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise SealBroken("the sealed value does not open with this key") from exc
