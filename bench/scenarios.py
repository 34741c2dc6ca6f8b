"""What a user does in each scenario, and the logins that give the load its cookie."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

PASSWORD = "demo-pass-1"
MB = 1024 * 1024


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    method: str
    path: str
    login: str
    acting_as: str | None = None
    body_size: int = 0
    gateway_status: int = 200  # what the gateway must answer (the baselines just forward)


SCENARIOS = {s.name: s for s in (
    Scenario("buyer", "buyer-alice browses a product page", "GET", "/products/1",
             "buyer-alice"),
    Scenario("csr", "csr-carol as buyer-alice, product page (banner injected)", "GET",
             "/products/1", "csr-carol", acting_as="buyer-alice"),
    Scenario("denied", "buyer-alice asks for /admin: 403", "GET", "/admin", "buyer-alice",
             gateway_status=403),
    Scenario("upload", "buyer-alice POSTs 1 MB to /saved-jobs", "POST", "/saved-jobs",
             "buyer-alice", body_size=MB),
    Scenario("download", "buyer-alice GETs a 1 MB file", "GET", "/products/download-1m",
             "buyer-alice"),
)}


def _session_cookie(resp: aiohttp.ClientResponse, name: str) -> str:
    morsel = resp.cookies.get(name)
    if morsel is None or not morsel.value:
        raise RuntimeError(f"no {name} cookie from {resp.url} (status {resp.status})")
    return morsel.value


async def _login(base: str, user: str, acting_as: str | None, cookie_name: str) -> str:
    jar = aiohttp.DummyCookieJar()
    async with aiohttp.ClientSession(base, cookie_jar=jar) as http:
        async with http.post("/_gateway/login", allow_redirects=False, data={
                "username": user, "password": PASSWORD, "next": "/"}) as resp:
            if resp.status != 303:
                raise RuntimeError(f"login {user}: {resp.status} {await resp.text()}")
            sid = _session_cookie(resp, cookie_name)
        if acting_as is None:
            return sid
        cookie = {"Cookie": f"{cookie_name}={sid}"}
        async with http.get("/_gateway/whoami", headers={**cookie,
                                                         "Accept": "application/json"}) as resp:
            token = (await resp.json())["csrf_token"]
        async with http.post("/_gateway/impersonate", headers=cookie, allow_redirects=False,
                             data={"buyer": acting_as, "reason": "BENCH-1",
                                   "csrf_token": token}) as resp:
            if resp.status != 303:
                raise RuntimeError(f"impersonate {acting_as}: {resp.status}")
            return _session_cookie(resp, cookie_name)


def login(base: str, scenario: Scenario, cookie_name: str) -> str:
    """The session id a scenario's load sends (one login; argon2 is slow on purpose)."""
    return asyncio.run(_login(base, scenario.login, scenario.acting_as, cookie_name))


async def _status(url: str, method: str, cookie: str, body_size: int) -> int:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http, \
            http.request(method, url, headers={"Cookie": cookie},
                         data=bytes(body_size) if body_size else None,
                         allow_redirects=False) as resp:
        await resp.read()
        return resp.status


def probe(url: str, scenario: Scenario, cookie: str) -> int:
    """One request before the load: proves the target answers what the scenario expects."""
    return asyncio.run(_status(url + scenario.path, scenario.method, cookie,
                               scenario.body_size))
