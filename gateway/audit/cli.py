"""`csr-gateway audit query|verify`."""

from __future__ import annotations

import argparse
import sys

from gateway.audit.query import Filter, parse_time, render, select
from gateway.audit.verify import Break, verify_files

EQUALS = ("csr", "user", "actor", "company", "event", "decision", "reason", "method",
          "impersonation_id", "request_id")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="query and verify audit logs")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    verify = asub.add_parser("verify", help="prove the files were not edited")
    verify.add_argument("files", nargs="+", metavar="FILE", help="in chain order")
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
        result = verify_files(args.files)
    except OSError as exc:
        print(f"cannot read: {exc}", file=sys.stderr)
        return 2
    if isinstance(result, Break):
        print(f"BROKEN {result}")
        return 1
    print(f"ok: {result.lines} lines, chain intact, last hash {result.last_hash}")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    flt = Filter({k: getattr(args, k) for k in EQUALS if getattr(args, k)},
                 since=parse_time(args.since) if args.since else None,
                 until=parse_time(args.until) if args.until else None,
                 path_glob=args.path, state_changing=args.state_changing)
    records = select(args.files, flt, sort=args.sort, reverse=args.reverse, limit=args.limit)
    try:
        for line in render(records, args.format):
            print(line)
    except OSError as exc:
        print(f"cannot read: {exc}", file=sys.stderr)
        return 2
    return 0
