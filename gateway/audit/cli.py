"""`csr-gateway audit query|verify` (interim: replaced by the full audit CLI)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="query and verify audit logs")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    for name in ("query", "verify"):
        p = asub.add_parser(name)
        p.add_argument("files", nargs="+")
        p.set_defaults(func=lambda args: 2)
