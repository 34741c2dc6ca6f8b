"""The gateway as an OpenID client: discovery, the provider's keys, code and refresh grants."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import aiohttp

from gateway.core.errors import ServiceUnavailable
from gateway.core.settings import OidcSettings
from gateway.oidc import tokens
from gateway.oidc.flow import Once
from gateway.oidc.tokens import TokenRefused
from gateway.sessions.store import Session

if TYPE_CHECKING:
    from joserfc.jwk import KeySet

log = logging.getLogger("csr_gateway")
JWKS_REFETCH_SECONDS = 30.0  # an unknown kid refetches the keys at most this often
METADATA_SECONDS = 3600.0
CLAIMS_REQUEST = '{"id_token":{"auth_time":{"essential":true},"amr":null,"acr":null}}'
TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)


def pkce_pair() -> tuple[str, str]:
    """RFC 7636 S256: the verifier kept in the browser's flow cookie, its hash sent."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcLogin:
    """One configured provider; its metadata and keys are cached and refetched on demand."""

    def __init__(self, settings: OidcSettings, once: Once) -> None:
        # joserfc only where a provider is configured (a worker without one never loads it)
        from joserfc.jwk import KeySet

        self.settings = settings
        self.once = once
        self.refetch_every = JWKS_REFETCH_SECONDS
        self._http: aiohttp.ClientSession | None = None
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys = KeySet([])
        self._keys_at = float("-inf")

    async def close(self) -> None:
        await self.once.close()
        if self._http is not None:
            await self._http.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=TIMEOUT,
                                               cookie_jar=aiohttp.DummyCookieJar())
        return self._http

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._client().get(url, allow_redirects=False) as resp:
                resp.raise_for_status()
                data = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise ServiceUnavailable("idp_unavailable", "The sign-in provider is not reachable.",
                                     detail=f"{url}: {type(exc).__name__}") from exc
        if not isinstance(data, dict):
            raise ServiceUnavailable("idp_unavailable", detail=f"{url}: not a JSON object")
        return data

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None or time.monotonic() - self._metadata_at > METADATA_SECONDS:
            url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
            found = await self._get_json(url)
            if found.get("issuer") != self.settings.issuer:
                raise ServiceUnavailable("idp_misconfigured", detail=(
                    f"discovery says issuer {found.get('issuer')!r}, "
                    f"configured {self.settings.issuer!r}"))
            self._metadata, self._metadata_at = found, time.monotonic()
        return self._metadata

    async def keys_for(self, token: str) -> KeySet:
        """The provider's keys; a kid not seen yet means it rotated: fetch again (bounded)."""
        kid = tokens.key_id(token)
        known = {k.kid for k in self._keys.keys}
        stale = time.monotonic() - self._keys_at > self.refetch_every
        if (kid not in known or not known) and stale:
            # joserfc only where a provider is configured (a worker without one never loads it)
            from joserfc.jwk import KeySet

            meta = await self.metadata()
            raw = await self._get_json(str(meta["jwks_uri"]))
            try:
                self._keys = KeySet.import_key_set(raw)  # type: ignore[arg-type]
            except (ValueError, TypeError, KeyError) as exc:
                raise ServiceUnavailable("idp_unavailable", detail=f"jwks: {exc}") from exc
            self._keys_at = time.monotonic()
        return self._keys

    async def authorize_url(self, redirect_uri: str, state: str, nonce: str, challenge: str,
                            fresh_login: bool, mfa: bool = False) -> str:
        meta = await self.metadata()
        query = {"response_type": "code", "client_id": self.settings.client_id,
                 "redirect_uri": redirect_uri, "scope": " ".join(self.settings.scopes),
                 "state": state, "nonce": nonce, "code_challenge": challenge,
                 "code_challenge_method": "S256",
                 # how the person authenticated is what the step-up and MFA rules read
                 "claims": CLAIMS_REQUEST}
        if fresh_login:  # step-up: the provider must see the person again now
            query |= {"prompt": "login", "max_age": "0"}
        if mfa and self.settings.mfa_acr_values:  # the policy wants a second factor
            query["acr_values"] = " ".join(self.settings.mfa_acr_values)
        return f"{meta['authorization_endpoint']}?{urlencode(query)}"

    async def token_grant(self, form: dict[str, str]) -> dict[str, Any]:
        """POST to the token endpoint; an error answer is a refusal, not an outage."""
        meta, cfg = await self.metadata(), self.settings
        headers = {"Accept": "application/json"}
        if cfg.token_auth_method == "client_secret_basic":  # RFC 6749 2.3.1: form-encoded first
            headers["Authorization"] = aiohttp.encode_basic_auth(
                quote(cfg.client_id, safe=""), quote(cfg.client_secret, safe=""))
        else:
            form = {**form, "client_id": cfg.client_id, "client_secret": cfg.client_secret}
        try:
            async with self._client().post(str(meta["token_endpoint"]), data=form, headers=headers,
                                           allow_redirects=False) as resp:
                body = await resp.json(content_type=None)
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise ServiceUnavailable("idp_unavailable", "The sign-in provider is not reachable.",
                                     detail=type(exc).__name__) from exc
        if status >= 500:
            raise ServiceUnavailable("idp_unavailable", detail=f"token endpoint {status}")
        if status != 200 or not isinstance(body, dict) or "id_token" not in body:
            error = body.get("error") if isinstance(body, dict) else None
            raise TokenRefused("oidc_token_invalid", f"token endpoint {status}: {error}")
        return body

    async def id_claims(self, token: str, nonce: str | None) -> dict[str, Any]:
        cfg = self.settings
        return tokens.id_token_claims(token, await self.keys_for(token), issuer=cfg.issuer,
                                      audience=cfg.client_id, leeway=cfg.clock_skew_seconds,
                                      nonce=nonce)

    async def logout_claims(self, token: str) -> dict[str, Any]:
        cfg = self.settings
        return tokens.logout_token_claims(token, await self.keys_for(token),
                                          issuer=cfg.issuer, audience=cfg.client_id,
                                          leeway=cfg.clock_skew_seconds)

    async def end_session_url(self, session: Session, after: str) -> str | None:
        """RP-initiated logout at the provider, where it offers one."""
        try:
            meta = await self.metadata()
        except ServiceUnavailable:
            return None
        endpoint = meta.get("end_session_endpoint")
        if not endpoint or session.idp is None:
            return None
        query = {"client_id": self.settings.client_id, "post_logout_redirect_uri": after}
        if session.idp.id_token:
            query["id_token_hint"] = session.idp.id_token
        return f"{endpoint}?{urlencode(query)}"
