"""The signed assertion: claims, algorithms, the published JWKS, key rotation."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from gateway.core.settings import AssertionSettings
from gateway.services.assertion import AssertionSigner, KeyFileError, load_keys, thumbprint
from tests.support.gateway import impersonate, login
from tests.support.processes import launch_gateway, stop_process

SECRET = "s" * 40


def verify(client: TestClient, token: str, audience: str = "csr-demo-shop") -> dict[str, Any]:
    """As a shop would: PyJWKClient on the published JWKS (blocking, so off the loop)."""
    url = str(client.make_url("/_gateway/.well-known/jwks.json"))
    key = jwt.PyJWKClient(url, cache_keys=False).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=["EdDSA", "RS256", "ES256"],
                                        audience=audience, issuer="csr-gateway")
    return claims


async def verified(client: TestClient, token: str) -> dict[str, Any]:
    return await asyncio.to_thread(verify, client, token)


def write_key(directory: Path, name: str, key: Any, *, mtime: float | None = None) -> Path:
    path = directory / name
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_kid_is_the_rfc7638_thumbprint() -> None:
    """The RFC 7638 section 3.1 example key gives the RFC's thumbprint."""
    jwk = {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29", "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YG"
        "jQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdk"
        "t-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnq"
        "DKgw")}
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize(("user", "buyer", "sub", "act", "company", "groups"), [
    ("buyer-alice", None, "buyer-alice", None, "acme", ["Buyer"]),
    ("csr-carol", None, "csr-carol", None, None, ["CSR"]),
    ("csr-carol", "buyer-alice", "buyer-alice", "csr-carol", "acme", ["Buyer"]),
    ("csr-carol", "buyer-bob", "buyer-bob", "csr-carol", "globex", ["Buyer"]),
], ids=["buyer-own", "csr-as-self", "csr-as-alice", "csr-as-bob"])
async def test_claims_say_who_acts_for_whom(gateway, upstream, user, buyer, sub, act, company,
                                            groups) -> None:
    """sub is the effective user, act.sub the CSR only while impersonating (RFC 8693), with
    the reason, the policy revision, a short life and the shop as audience."""
    from tests.support.gateway import gw_of

    await login(gateway, user)
    if buyer:
        assert await impersonate(gateway, buyer, "TICKET-5") == 303
    await gateway.get("/reports")
    seen = upstream.last
    claims = await verified(gateway, seen.header("X-Gateway-Assertion") or "")
    act_claim = claims.get("act")
    assert (claims["sub"], act_claim and act_claim["sub"], claims["company"],
            claims["groups"]) == (sub, act, company, groups)
    if act:  # when the CSR entered the password, for the shop to weigh
        assert abs(act_claim["auth_time"] - time.time()) < 300
    assert claims.get("impersonation_reason") == ("TICKET-5" if act else None)
    assert (seen.header("X-Remote-User"), seen.header("X-Impersonator")) == (sub, act)
    assert claims["policy_rev"] == gw_of(gateway).policy.rev
    assert claims["exp"] - claims["iat"] == 60 and claims["iat"] <= time.time() + 1
    with pytest.raises(jwt.InvalidAudienceError):
        await asyncio.to_thread(verify, gateway, seen.header("X-Gateway-Assertion") or "",
                                "another-shop")


async def test_sid_is_a_stable_hash_never_the_session_id(gateway, upstream) -> None:
    """sid lets the shop correlate one session's requests; it is not the cookie, and a new
    identity (new session) has a new sid."""
    await login(gateway, "csr-carol")
    session_id = next(c.value for c in gateway.session.cookie_jar if c.key == "csrgw_session")
    sids = []
    for path in ("/reports", "/saved-jobs"):
        await gateway.get(path)
        sids.append(jwt.decode(upstream.last.header("X-Gateway-Assertion") or "",
                               options={"verify_signature": False})["sid"])
    await impersonate(gateway, "buyer-alice")
    await gateway.get("/reports")
    token = upstream.last.header("X-Gateway-Assertion") or ""
    acting_sid = jwt.decode(token, options={"verify_signature": False})["sid"]
    assert sids[0] == sids[1] != acting_sid
    assert session_id not in token and session_id not in sids


async def test_a_forged_assertion_never_reaches_the_shop(gateway, upstream) -> None:
    """A client-sent X-Gateway-Assertion is dropped; the shop gets exactly the gateway's."""
    forged = jwt.encode({"sub": "admin-ann", "aud": "csr-demo-shop"}, SECRET, algorithm="HS256")
    await login(gateway, "buyer-alice")
    await gateway.get("/reports", headers={"X-Gateway-Assertion": forged,
                                           "x-gateway-assertion": forged})
    (token,) = upstream.last.all("x-gateway-assertion")
    assert token != forged and (await verified(gateway, token))["sub"] == "buyer-alice"


@pytest.mark.parametrize(("algorithm", "kty"), [
    ("EdDSA", "OKP"), ("RS256", "RSA"), ("ES256", "EC"),
], ids=["eddsa", "rs256", "es256"])
async def test_algorithms_and_jwks(make_gateway, upstream, algorithm, kty) -> None:
    """Each asymmetric algorithm: a key is generated (0600), published, and verifies."""
    client = await make_gateway(assertion={"algorithm": algorithm})
    jwks = await (await client.get("/_gateway/.well-known/jwks.json")).json()
    (published,) = jwks["keys"]
    assert (published["kty"], published["alg"], published["use"]) == (kty, algorithm, "sig")
    assert "d" not in published and "p" not in published  # never a private member
    assert published["kid"] == thumbprint(published)
    from tests.support.gateway import gw_of
    (path,) = gw_of(client).settings.assertion.keys_dir.glob("*.pem")
    assert path.stat().st_mode & 0o777 == 0o600
    await login(client, "csr-carol")
    await impersonate(client, "buyer-alice")
    await client.get("/reports")
    token = upstream.last.header("X-Gateway-Assertion") or ""
    assert jwt.get_unverified_header(token) == {"alg": algorithm, "kid": published["kid"],
                                                "typ": "JWT"}
    assert (await verified(client, token))["act"]["sub"] == "csr-carol"


async def test_hs256_is_optional_and_needs_a_real_secret(make_gateway, upstream) -> None:
    """HS256 with a shared secret: nothing to publish; a short secret refuses to start."""
    client = await make_gateway(assertion={"algorithm": "HS256", "hs256_secret": SECRET})
    assert (await (await client.get("/_gateway/.well-known/jwks.json")).json()) == {"keys": []}
    await login(client, "buyer-alice")
    await client.get("/reports")
    claims = jwt.decode(upstream.last.header("X-Gateway-Assertion") or "", SECRET,
                        algorithms=["HS256"], audience="csr-demo-shop")
    assert claims["sub"] == "buyer-alice"
    for secret in (None, "short"):
        with pytest.raises(KeyFileError, match="hs256_secret"):
            AssertionSigner(AssertionSettings(algorithm="HS256", hs256_secret=secret))


async def test_rotation_two_keys_newest_signs_old_tokens_verify(gateway, upstream) -> None:
    """Drop a new PEM, reload: both published, the newest signs, a token signed before still
    verifies; remove the old one after the TTL, reload: only the new one is left."""
    from tests.support.gateway import gw_of

    gw = gw_of(gateway)
    keys_dir = gw.settings.assertion.keys_dir
    (old_path,) = keys_dir.glob("*.pem")
    await login(gateway, "buyer-alice")
    await gateway.get("/reports")
    old_token = upstream.last.header("X-Gateway-Assertion") or ""
    write_key(keys_dir, "signing-2.pem", ed25519.Ed25519PrivateKey.generate(),
              mtime=old_path.stat().st_mtime + 10)
    assert gw.signer.reload_keys() is True
    kids = [k["kid"] for k in (await (await gateway.get(
        "/_gateway/.well-known/jwks.json")).json())["keys"]]
    assert len(kids) == 2
    await gateway.get("/saved-jobs")
    new_token = upstream.last.header("X-Gateway-Assertion") or ""
    assert jwt.get_unverified_header(new_token)["kid"] == kids[1]
    assert jwt.get_unverified_header(old_token)["kid"] == kids[0]
    assert (await verified(gateway, old_token))["sub"] == "buyer-alice"
    assert (await verified(gateway, new_token))["sub"] == "buyer-alice"
    old_path.unlink()
    assert gw.signer.reload_keys() is True
    jwks = await (await gateway.get("/_gateway/.well-known/jwks.json")).json()
    assert [k["kid"] for k in jwks["keys"]] == [kids[1]]
    with pytest.raises(jwt.PyJWKClientError):
        await verified(gateway, old_token)


@pytest.mark.parametrize("bad", [
    b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    "rsa-for-eddsa", "p384-for-es256",
], ids=["garbage", "broken-pem", "wrong-type", "wrong-curve"])
def test_a_bad_key_file_keeps_the_current_keys(tmp_path, bad) -> None:
    """A reload that meets a bad file keeps signing with the keys it had (and says so); a
    start with one refuses, naming the file."""
    settings = AssertionSettings(keys_dir=tmp_path, algorithm="EdDSA")
    signer = AssertionSigner(settings)
    before = signer.jwks()
    if bad == "rsa-for-eddsa":
        write_key(tmp_path, "z.pem", rsa.generate_private_key(public_exponent=65537,
                                                              key_size=2048))
    elif bad == "p384-for-es256":
        settings = AssertionSettings(keys_dir=tmp_path / "es", algorithm="ES256")
        signer = AssertionSigner(settings)
        before = signer.jwks()
        write_key(tmp_path / "es", "z.pem", ec.generate_private_key(ec.SECP384R1()))
    else:
        (tmp_path / "z.pem").write_bytes(bad)
    assert signer.reload_keys() is False
    assert signer.jwks() == before
    token = signer.sign(sub="u", company=None, csr=None, sid="s", reason=None,
                        policy_rev="r", groups=[])
    assert jwt.get_unverified_header(token)["kid"] == before["keys"][0]["kid"]
    with pytest.raises(KeyFileError, match=r"z\.pem"):
        load_keys(settings)


def test_first_key_is_one_key_for_every_worker(tmp_path) -> None:
    """Workers starting at once on an empty keys_dir end up with one key, not one each."""
    settings = AssertionSettings(keys_dir=tmp_path / "keys")
    barrier, kids = threading.Barrier(8), []

    def worker() -> None:
        barrier.wait()
        kids.append([k.kid for k in load_keys(settings)])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({tuple(k) for k in kids}) == 1 and len(kids[0]) == 1
    assert [p.name for p in (tmp_path / "keys").iterdir()] == ["signing-initial.pem"]


def test_assertions_are_reused_while_fresh_and_follow_group_changes(tmp_path) -> None:
    """One signature per identity while more than half its life is left; any claim that
    changes (groups too) gets a new token."""
    signer = AssertionSigner(AssertionSettings(keys_dir=tmp_path))
    args: dict[str, Any] = {"sub": "u", "company": "acme", "csr": None, "sid": "s",
                            "reason": None, "policy_rev": "r", "groups": ["Buyer"]}
    first = signer.sign(**args)
    assert signer.sign(**args) == first
    assert signer.sign(**(args | {"groups": ["Buyer", "VIP"]})) != first


def test_sighup_reloads_keys_in_a_running_gateway(tmp_path, seeded_directory) -> None:
    """`csr-gateway run`: a new PEM and SIGHUP publish both keys without a restart."""
    proc, base = launch_gateway(tmp_path, seeded_directory, "http://127.0.0.1:9")
    try:
        def kids() -> list[str]:
            with urllib.request.urlopen(f"{base}/_gateway/.well-known/jwks.json") as resp:
                return [k["kid"] for k in orjson.loads(resp.read())["keys"]]

        (first,) = kids()
        write_key(tmp_path / "keys", "signing-next.pem", ed25519.Ed25519PrivateKey.generate(),
                  mtime=time.time() + 5)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while len(kids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        found = kids()
        assert len(found) == 2 and found[0] == first
    finally:
        stop_process(proc)
