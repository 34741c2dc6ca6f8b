"""`csr-gateway audit query|verify`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from gateway.audit.anchor import anchor_url, load_heads
from gateway.audit.log import AUDIT_KEYS
from gateway.audit.query import Filter, Unreadable, parse_time, render, select
from gateway.audit.verify import Break, chain_of, verify_files
from gateway.config.yamlsrc import ConfigError

EQUALS = ("csr", "user", "actor", "company", "event", "decision", "reason", "method",
          "impersonation_id", "request_id")


class NoAnchor(Exception):
    """verify --config on a configuration without an anchor."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="query and verify audit logs")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    verify = asub.add_parser("verify", help="prove the files were not edited")
    verify.add_argument("files", nargs="+", metavar="FILE",
                        help="rotated files of one path oldest first; per-worker files in any "
                             "order")
    where = verify.add_mutually_exclusive_group()
    where.add_argument("--anchor", metavar="URL",
                       help="redis:// or postgresql:// holding the chain heads (audit.anchor)")
    where.add_argument("--config", metavar="FILE", help="take audit.anchor from this config")
    verify.set_defaults(func=cmd_verify)
    query = asub.add_parser("query", help="filter, sort and print audit lines")
    query.add_argument("files", nargs="+", metavar="FILE")
    for key in EQUALS:
        query.add_argument(f"--{key.replace('_', '-')}", dest=key, metavar="VALUE")
    query.add_argument("--since", help="ISO time or age like 7d, 24h")
    query.add_argument("--until", help="ISO time or age")
    query.add_argument("--path", metavar="GLOB", help="e.g. '/orders/*'")
    query.add_argument("--state-changing", action="store_true",
                       help="only actions that changed state (orders, forms)")
    query.add_argument("--sort", metavar="FIELD")
    query.add_argument("--reverse", action="store_true")
    query.add_argument("--limit", type=int)
    query.add_argument("--format", choices=("table", "json", "csv"), default="table")
    query.set_defaults(func=cmd_query)


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        heads = _anchored_heads(args)
    except (ConfigError, NoAnchor) as exc:
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cannot read: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the anchor store is down or the URL is wrong
        print(f"cannot read the anchor: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        result = verify_files(args.files, heads.get if heads is not None else None)
    except OSError as exc:
        print(f"cannot read: {exc}", file=sys.stderr)
        return 2
    if isinstance(result, Break):
        print(f"BROKEN {result}")
        return 1
    chains = len(result.chains)
    print(f"ok: {result.lines} lines, chain intact, last hash {result.last_hash}"
          + (f" ({chains} chains)" if chains > 1 else ""))
    for place in result.torn:
        print(f"note: torn tail at {place}: a line cut short by a crash or a full disk "
              "(never acknowledged; the next segment starts cleanly)")
    if heads is not None:
        print(f"anchor: {len(result.anchored)} of {chains} chains end at or after their "
              "anchored head" + ("" if len(heads) == chains else
                                 f"; {chains - len(heads)} have no anchor"))
    return 0


def _anchored_heads(args: argparse.Namespace) -> dict[str, dict[str, Any]] | None:
    url = args.anchor
    if args.config:
        from gateway.config.load import load_settings

        settings = load_settings(args.config)
        url = anchor_url(settings.audit.anchor, settings.directory.url)
        if url is None:
            raise NoAnchor(f"{args.config}: audit.anchor is none: no anchor to check")
    if url is None:
        return None
    chains = [chain_of(Path(f)) for f in args.files]
    return asyncio.run(load_heads(url, chains))


SORTABLE = (*AUDIT_KEYS, "outcome", "bytes_sent", "state_changing", "detail", "refused")


def cmd_query(args: argparse.Namespace) -> int:
    try:
        since, until = _when("--since", args.since), _when("--until", args.until)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.sort and args.sort not in SORTABLE:
        print(f"cannot sort by {args.sort!r}: expected one of {', '.join(SORTABLE)}",
              file=sys.stderr)
        return 2
    flt = Filter({k: getattr(args, k) for k in EQUALS if getattr(args, k)},
                 since=since, until=until, path_glob=args.path,
                 state_changing=args.state_changing)
    unreadable = Unreadable()
    records = select(args.files, flt, sort=args.sort, reverse=args.reverse, limit=args.limit,
                     unreadable=unreadable)
    try:
        for line in render(records, args.format):
            print(line)
    except OSError as exc:
        print(f"cannot read: {exc}", file=sys.stderr)
        return 2
    if unreadable.count:
        print(f"{unreadable.count} lines could not be read (not JSON objects: a torn tail "
              "or an edit; `audit verify` says which)", file=sys.stderr)
    return 0


def _when(option: str, text: str | None) -> str | None:
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected an ISO time (2026-11-22T16:00:00Z) or "
                         "an age like 30m, 24h, 7d") from None
