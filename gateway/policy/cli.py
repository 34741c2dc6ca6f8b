"""`csr-gateway policy test|explain|matrix`: tools for the people who write the policy."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    policy = sub.add_parser("policy", help="test, explain and tabulate the policy")
    psub = policy.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")

    test = psub.add_parser("test", help="run YAML decision tables against routes and policy")
    test.add_argument("files", nargs="*", help="decision tables (default: policies/tests/*.yaml)")
    test.add_argument("--replay", metavar="AUDIT_FILE",
                      help="re-decide recorded requests; report every decision that changes")
    _common(test)
    test.set_defaults(func=_run("test"))

    explain = psub.add_parser("explain", help="why a request is allowed or denied")
    explain.add_argument("--user", required=True)
    explain.add_argument("--as", dest="acting_as", metavar="BUYER")
    explain.add_argument("method")
    explain.add_argument("path")
    explain.add_argument("--trace", action="store_true",
                         help="also print Polar's query log for the deciding question")
    _common(explain)
    explain.set_defaults(func=_run("explain"))

    matrix = psub.add_parser("matrix", help="the groups x pages access matrix")
    matrix.add_argument("--format", choices=("table", "html", "json"), default="table")
    matrix.add_argument("--group", metavar="NAME",
                        help="html: show only this group and its acting rows")
    _common(matrix)
    matrix.set_defaults(func=_run("matrix"))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="gateway configuration (default: the bundled demo configuration)")
    parser.add_argument("--policies", metavar="DIR", help="policy directory to use instead")
    parser.add_argument("--live-directory", action="store_true",
                        help="decide with the configured directory database, not its seed file")


def _run(name: str):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        import sys

        from gateway.config import ConfigError
        from gateway.policy import PolicyLoadError, tools

        try:
            return int(getattr(tools, f"cmd_{name}")(args))
        except (tools.UnknownUser, ConfigError, PolicyLoadError) as exc:
            print(exc, file=sys.stderr)  # file:line message, as `check` reports it
            return 2
    return run


def default_config() -> Path:
    from gateway.demo_cli import default_config as found

    return found()
