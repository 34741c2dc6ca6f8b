"""The second factor's pure parts: sealing, the code check and its window, the
pending login, recovery codes, and the `login.totp` configuration."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pyotp
import pytest

from gateway.config.load import ConfigError, settings_from_text
from gateway.services.sealing import KEY_FILE, SealBroken, Sealer, decode_key, load_key
from gateway.services.totp import (
    RECOVERY_ALPHABET,
    PendingLogin,
    SecondFactor,
    match_step,
    new_recovery_code,
    normalise,
    qr_svg,
)

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
T = 1_800_000_015.0  # a fixed moment, 15 s into its step
STEP = int(T // 30)
GOOD = """\
pages:
  storefront: {title: Storefront}
routes:
  - {path: /, page: storefront}
"""


def code(step: int) -> str:
    return pyotp.TOTP(SECRET).generate_otp(step)


@pytest.mark.parametrize(("offset", "found"), [
    (0, 0), (-1, -1), (1, 1), (-2, None), (2, None), (-100, None),
], ids=["now", "one-behind", "one-ahead", "two-behind", "two-ahead", "long-ago"])
def test_window_is_one_step(offset: int, found: int | None) -> None:
    """A code of this step or one either side names its step; anything further is refused."""
    if offset not in (-1, 0, 1) and code(STEP + offset) in {code(STEP + s) for s in (-1, 0, 1)}:
        pytest.skip("codes of two steps collide")
    result = match_step(SECRET, code(STEP + offset), T)
    assert result == (None if found is None else STEP + found)


FULLWIDTH = "".join(chr(0xFF11 + i) for i in range(6))  # looks like 123456, is no code


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "12 345", FULLWIDTH],
                         ids=["empty", "five", "seven", "letters", "space", "fullwidth"])
def test_malformed_codes_never_match(typed: str) -> None:
    """Only six ASCII digits are a code."""
    assert match_step(SECRET, typed, T) is None


def test_sealing_round_trip_and_binding() -> None:
    """A sealed secret opens with its key and owner only; every seal differs (random nonce)."""
    sealer = Sealer(os.urandom(32))
    sealed = sealer.seal(b"secret", "totp:csr-carol")
    assert sealer.open(sealed, "totp:csr-carol") == b"secret"
    assert sealer.seal(b"secret", "totp:csr-carol") != sealed
    with pytest.raises(SealBroken):
        sealer.open(sealed, "totp:csr-dave")  # copied to another user's row
    with pytest.raises(SealBroken):
        Sealer(os.urandom(32)).open(sealed, "totp:csr-carol")  # another key
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(SealBroken):
        sealer.open(tampered, "totp:csr-carol")
    with pytest.raises(SealBroken):
        sealer.open("not base64 at all!", "totp:csr-carol")


@pytest.mark.parametrize(("text", "ok"), [
    (base64.b64encode(b"x" * 32).decode(), True),
    (base64.urlsafe_b64encode(b"\xff" * 32).decode().rstrip("="), True),
    (base64.b64encode(b"x" * 16).decode(), False),
    ("not-base64-$$$", False),
    ("", False),
], ids=["standard", "urlsafe-unpadded", "too-short", "garbage", "empty"])
def test_key_decoding(text: str, ok: bool) -> None:
    """32 bytes of base64 (either alphabet); anything else is refused."""
    if ok:
        assert len(decode_key(text)) == 32
    else:
        with pytest.raises(ValueError):
            decode_key(text)


def test_generated_key_is_made_once(tmp_path: Path) -> None:
    """Without a configured key one is made in state_dir (0600) and read back the same."""
    first = load_key(None, tmp_path)
    assert load_key(None, tmp_path) == first and len(first) == 32
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert load_key(base64.b64encode(b"k" * 32).decode(), tmp_path) == b"k" * 32


def _factor() -> SecondFactor:
    return SecondFactor(None, Sealer(b"p" * 32), "csr-gateway", None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("change", "ip", "accepted"), [
    ({}, "10.0.0.1", True),
    ({"expires": T - 1}, "10.0.0.1", False),
    ({}, "10.0.0.2", False),
], ids=["fresh", "expired", "other-address"])
def test_pending_login(change: dict[str, float], ip: str, accepted: bool) -> None:
    """The second page's state opens only before it expires and from the same address."""
    second = _factor()
    pending = PendingLogin("csr-carol", "/cart", "10.0.0.1", T + 300, False)
    pending = PendingLogin(**{**pending.__dict__, **change})
    opened = second.open_pending(second.seal_pending(pending), ip, now=T)
    assert (opened == pending) if accepted else opened is None


def test_forged_pending_login_is_refused() -> None:
    """A state sealed under another key, or tampered with, opens as nothing."""
    other = SecondFactor(None, Sealer(b"q" * 32), "x", None)  # type: ignore[arg-type]
    token = other.seal_pending(PendingLogin("admin-ann", "/", "10.0.0.1", T + 300))
    assert _factor().open_pending(token, "10.0.0.1", now=T) is None
    assert _factor().open_pending("garbage", "10.0.0.1", now=T) is None


def test_recovery_codes_are_readable_and_random() -> None:
    """Ten characters from an alphabet without look-alikes, in two groups; typed any way."""
    codes = {new_recovery_code() for _ in range(200)}
    assert len(codes) == 200
    for found in codes:
        head, tail = found.split("-")
        assert len(head) == len(tail) == 5 and set(head + tail) <= set(RECOVERY_ALPHABET)
    assert normalise(" AbCdE-fGhJk ") == "abcdefghjk"


def test_qr_code_is_inline_svg_with_a_title() -> None:
    """The QR code is an SVG element with a title (no script, no image request)."""
    uri = pyotp.TOTP(SECRET).provisioning_uri(name="csr-carol", issuer_name="csr-gateway")
    svg = qr_svg(uri, "QR code")
    assert svg.startswith("<svg") and "<title>QR code</title>" in svg and "<script" not in svg


@pytest.mark.parametrize(("snippet", "expected"), [
    ("login: {totp: {secret_key: c2hvcnQ=}}\n",
     "<f>:5 login.totp.secret_key: must decode to 32 bytes, got 5"),
    ("login: {totp: {secret_key: '%%%'}}\n", "<f>:5 login.totp.secret_key: is not base64"),
    ("login: {totp: {issuer: 'a:b'}}\n", "<f>:5 login.totp.issuer: must be non-empty text"),
    ("login: {totp: {isuser: x}}\n", "<f>:5 login.totp.isuser: unknown key"),
    ("login: {totp: 3}\n", "<f>:5 login.totp: must be a mapping"),
], ids=["short-key", "bad-key", "colon-issuer", "typo", "not-a-mapping"])
def test_bad_totp_settings_are_refused(snippet: str, expected: str) -> None:
    """Each bad `login.totp` value is reported with file, line and key."""
    with pytest.raises(ConfigError) as err:
        settings_from_text(GOOD + snippet, "<f>")
    assert any(str(p).startswith(expected) for p in err.value.problems), str(err.value)


def test_totp_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The issuer defaults to csr-gateway; `${CSRGW_TOTP_KEY}` set empty means generated."""
    assert settings_from_text(GOOD).login.totp.issuer == "csr-gateway"
    monkeypatch.setenv("CSRGW_TOTP_KEY", "")
    text = GOOD + "login: {totp: {issuer: Acme, secret_key: '${CSRGW_TOTP_KEY}'}}\n"
    totp = settings_from_text(text).login.totp
    assert totp.issuer == "Acme" and totp.secret_key is None
    key = base64.b64encode(b"z" * 32).decode()
    monkeypatch.setenv("CSRGW_TOTP_KEY", key)
    assert settings_from_text(text).login.totp.secret_key == key
