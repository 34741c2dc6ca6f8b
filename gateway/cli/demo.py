"""`csr-gateway demo`: the gateway in front of the demo shop (or another shop), one command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from pathlib import Path

from aiohttp import web

from gateway.cli.errors import one_line, startup_errors
from gateway.core.settings import RouteSpec, Settings
from gateway.defaults import DEMO_CONFIG

DEMO_LOGINS = """\
Demo logins (password demo-pass-1 for all):
  csr-carol     CSR, assigned Acme Corp and Globex Inc   <- try "Log in as buyer"
  csr-dave      CSR, assigned Initech
  buyer-alice   customer of Acme Corp     buyer-bob  customer of Globex Inc
  buyer-ivan    customer of Initech       prospect-pat  prospect of Acme Corp
  admin-ann     Administrator             sales-sam  Sales Admin"""


# In front of another shop, paths the demo routes do not know are decided as Storefront
# pages (the shipped config alone is deny-by-default: no route, 404).
FOREIGN_SHOP_FALLBACK = RouteSpec("/**", "storefront", fallback=True, methods=(
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo = sub.add_parser("demo", help="run the gateway in front of the demo shop")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--upstream-port", type=int, default=8081)
    demo.add_argument("--upstream", metavar="URL", help="put the gateway in front of this shop")
    demo.add_argument("--audit-log", metavar="PATH")
    demo.add_argument("--state-dir", metavar="DIR", default="var")
    demo.add_argument("--config", metavar="FILE")
    demo.add_argument("--policies", metavar="DIR")
    demo.set_defaults(func=cmd_demo)


def demo_settings(args: argparse.Namespace) -> Settings:
    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.config.load import load_settings

    settings = load_settings(args.config or DEMO_CONFIG)
    state = Path(args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    upstream = args.upstream or f"http://127.0.0.1:{args.upstream_port}"
    directory = settings.directory
    if not args.config:
        directory = dataclasses.replace(
            directory, url=f"sqlite+aiosqlite:///{state / 'directory.sqlite3'}")
    routes = settings.routes
    if args.upstream and not args.config:
        routes = (*routes, FOREIGN_SHOP_FALLBACK)
    return dataclasses.replace(
        settings, host="127.0.0.1", port=args.port, state_dir=state, routes=routes,
        policies_dir=Path(args.policies).resolve() if args.policies else settings.policies_dir,
        watch_policies=True, directory=directory,
        upstream=dataclasses.replace(settings.upstream, url=upstream),
        assertion=dataclasses.replace(settings.assertion, keys_dir=state / "keys"),
        audit=dataclasses.replace(settings.audit, path=str(
            Path(args.audit_log).resolve() if args.audit_log else state / "audit.jsonl")))


async def _demo(args: argparse.Namespace, settings: Settings) -> None:
    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.app.server import hook_signals, start_gateway

    shop_runner = None
    if not args.upstream:
        from gateway.demo.shop import create_shop_app

        jwks = f"http://127.0.0.1:{settings.port}/_gateway/.well-known/jwks.json"
        shop = create_shop_app(jwks_url=jwks, audience=settings.assertion.audience)
        shop_runner = web.AppRunner(shop, access_log=None)
        await shop_runner.setup()
        await web.TCPSite(shop_runner, "127.0.0.1", args.upstream_port).start()
    runner = await start_gateway(settings)
    stop = asyncio.Event()
    hook_signals(runner, stop)
    print(f"csr-gateway demo: open http://127.0.0.1:{settings.port}/  "
          f"(shop {settings.upstream.url}, audit {settings.audit.path})\n{DEMO_LOGINS}",
          flush=True)
    await stop.wait()
    await runner.cleanup()
    if shop_runner is not None:
        await shop_runner.cleanup()


def cmd_demo(args: argparse.Namespace) -> int:
    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.app.server import install_uvloop
    from gateway.config.load import ConfigError

    try:
        settings = demo_settings(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    install_uvloop()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_demo(args, settings))
    except startup_errors() as exc:  # a port in use, an unwritable state folder
        print(f"csr-gateway demo: cannot start: {one_line(exc)}", file=sys.stderr)
        return 1
    return 0
