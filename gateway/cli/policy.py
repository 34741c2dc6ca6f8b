"""`csr-gateway policy test|explain|matrix`: tools for the people who write the policy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.config.load import ConfigError, load_settings
from gateway.defaults import DEMO_CONFIG
from gateway.policy import PolicyLoadError
from gateway.policylab.explain import explain
from gateway.policylab.harness import Harness, UnknownUser, live_snapshot
from gateway.policylab.matrix import access_matrix, render
from gateway.policylab.tables import run_tables


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
        try:
            return int(COMMANDS[name](args))
        except (UnknownUser, ConfigError, PolicyLoadError) as exc:
            print(exc, file=sys.stderr)  # file:line message, as `check` reports it
            return 2
    return run


def _harness(args: argparse.Namespace) -> Harness:
    # each command loads only what it runs: `--help` and the tools stay light
    import asyncio

    settings = load_settings(args.config or DEMO_CONFIG)
    live = asyncio.run(live_snapshot(settings)) if getattr(args, "live_directory", False) \
        else None
    return Harness(settings, Path(args.policies) if getattr(args, "policies", None) else None,
                 live)


def cmd_test(args: argparse.Namespace) -> int:
    bench = _harness(args)
    if args.replay:
        from gateway.policylab.replay import replay

        return replay(bench, Path(args.replay))
    folder = bench.engine.directory / "tests"
    if not folder.is_dir():  # a candidate policy without tables: the shipped ones
        folder = bench.settings.policies_dir / "tests"
    files = [Path(f) for f in args.files] or sorted(folder.glob("*.yaml"))
    if not files:
        print(f"no decision tables found ({folder}/*.yaml)", file=sys.stderr)
        return 2
    return run_tables(bench, files)


def cmd_explain(args: argparse.Namespace) -> int:
    bench = _harness(args)
    print(explain(bench, args.user, args.acting_as, args.method, args.path,
                  trace=getattr(args, "trace", False)))
    return 0


def cmd_matrix(args: argparse.Namespace) -> int:
    bench = _harness(args)
    matrix = access_matrix(bench)
    group = getattr(args, "group", None)
    if group and not matrix.showing(group):
        known = ", ".join(r for r in matrix.rows if " as " not in r)
        print(f"no such group: {group} (groups: {known})", file=sys.stderr)
        return 2
    print(render(matrix, args.format, group))
    return 0


COMMANDS = {"test": cmd_test, "explain": cmd_explain, "matrix": cmd_matrix}
