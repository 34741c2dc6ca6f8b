"""`csr-gateway directory export|import|invite`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from gateway.cli.errors import settings_or_report
from gateway.core.settings import Settings
from gateway.directory.passwords import hasher_for
from gateway.directory.store import Directory


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    directory = sub.add_parser("directory", help="export, import, invite, reset-totp")
    dsub = directory.add_subparsers(dest="directory_command", required=True,
                                    metavar="SUBCOMMAND")
    export = dsub.add_parser("export", help="the directory as YAML (no secrets by default)")
    export.add_argument("--with-password-hashes", action="store_true")
    export.add_argument("-o", "--output", metavar="FILE")
    importing = dsub.add_parser("import", help="create or update from a YAML file")
    importing.add_argument("file")
    invite = dsub.add_parser("invite", help="print (and mail) a one-time link for a user")
    invite.add_argument("username")
    invite.add_argument("--reset", action="store_true", help="a password reset link")
    invite.add_argument("--base-url", help="the gateway's public URL (default: public_url, "
                        "else http://listen.host:listen.port)")
    reset = dsub.add_parser("reset-totp", help="remove a user's authenticator app and "
                            "recovery codes (a lost phone); audited")
    reset.add_argument("username")
    for parser in (export, importing, invite, reset):
        parser.add_argument("--config", required=True, metavar="FILE")
    export.set_defaults(func=_sync(cmd_export))
    importing.set_defaults(func=_sync(cmd_import))
    invite.set_defaults(func=_sync(cmd_invite))
    reset.set_defaults(func=_sync(cmd_reset_totp))


def _sync(fn: Callable[[argparse.Namespace, Directory], Awaitable[int]]) -> Any:
    def run(args: argparse.Namespace) -> int:
        # each command loads only what it runs: `--help` and the tools stay light
        settings = settings_or_report(args.config)
        if settings is None:
            return 2

        async def main() -> int:
            directory = await Directory.open(settings.directory.url, settings.directory.seed,
                                             hasher_for(settings.directory))
            try:
                args.settings = settings
                return await fn(args, directory)
            finally:
                await directory.close()
        return asyncio.run(main())
    return run


async def cmd_export(args: argparse.Namespace, directory: Directory) -> int:
    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.directory.transfer import export

    text = yaml.safe_dump(await export(directory, args.with_password_hashes), sort_keys=False)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


async def cmd_import(args: argparse.Namespace, directory: Directory) -> int:
    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.directory.service import ValidationFailed
    from gateway.directory.transfer import import_

    try:
        counts = await import_(directory, yaml.safe_load(Path(args.file).read_text()) or {})
    except ValidationFailed as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1
    print(", ".join(f"{n} {k}" for k, n in counts.items()) + " imported")
    return 0


async def cmd_invite(args: argparse.Namespace, directory: Directory) -> int:
    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.directory.invitations import Invitations, mail_link

    user = directory.snapshot.user(args.username)
    if user is None:
        print(f"no such user: {args.username}", file=sys.stderr)
        return 1
    purpose = "reset" if args.reset else "activate"
    token = await Invitations(directory).issue(user.username, purpose)
    base = (args.base_url or args.settings.public_url
            or f"http://{args.settings.host}:{args.settings.port}").rstrip("/")
    link = f"{base}/_gateway/{purpose}?token={token}"
    print(link)
    if await mail_link(user.email, link, purpose):
        print(f"mailed to {user.email}", file=sys.stderr)
    return 0


async def cmd_reset_totp(args: argparse.Namespace, directory: Directory) -> int:
    """The operator's way back in for someone who lost the phone and the recovery codes."""
    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.app.build import audit_log
    from gateway.directory.totp import SecondFactors

    user = directory.snapshot.user(args.username)
    if user is None:
        print(f"no such user: {args.username}", file=sys.stderr)
        return 1
    removed = await SecondFactors(directory.sessions).remove(user.username)
    log = audit_log(command_audit(args.settings))
    log.open()
    try:
        log.emit("totp_reset", user=user.username, actor=_operator(),
                 company=user.company, reason="ok", decision="allow",
                 detail="csr-gateway directory reset-totp" if removed else
                 "csr-gateway directory reset-totp: nothing was set up",
                 recovery_codes_left=0)
    finally:
        log.close()
        if log.anchor is not None:
            await log.anchor.update(log.head)
            await log.anchor.close()
    print(f"{user.username}: authenticator app and recovery codes removed" if removed else
          f"{user.username}: had no authenticator app; nothing to remove")
    return 0


def _operator() -> str:
    """Who ran the command, as the system knows them (a container may have no name)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid:{os.getuid()}"


def command_audit(settings: Settings) -> Settings:
    """A command chains its own audit file beside the gateway's (audit.jsonl ->
    audit.wcli.jsonl, found with the workers' files): two writers in one chain would break
    it."""
    path = Path(settings.audit.path)
    audit = dataclasses.replace(settings.audit,
                                path=str(path.with_suffix(f".wcli{path.suffix}")))
    return dataclasses.replace(settings, audit=audit)
