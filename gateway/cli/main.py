"""The `csr-gateway` command: demo, run, check, policy, audit, bench."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gateway import __version__
from gateway.cli.errors import one_line, settings_or_report, startup_errors

if TYPE_CHECKING:
    from gateway.core.settings import Settings


def _add_config(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--config", required=required, metavar="FILE",
                        help="gateway YAML configuration")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csr-gateway", description=(
        "Authorization gateway for customer-service impersonation."))
    parser.add_argument("--version", action="version", version=f"csr-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.cli import demo as demo_cli
    demo_cli.register(sub)

    run = sub.add_parser("run", help="serve the gateway with a configuration file")
    _add_config(run)
    run.add_argument("--workers", type=int, default=None, help="processes sharing the port")
    run.add_argument("--host", help="listen address (overrides listen.host)")
    run.add_argument("--port", type=int, help="listen port (overrides listen.port)")
    run.add_argument("--allow-python-parser", action="store_true",
                     help="start even without aiohttp's C HTTP parser")
    run.add_argument("--allow-demo-passwords", action="store_true",
                     help="serve a directory whose users still have the demo password "
                          "(also CSRGW_ALLOW_DEMO_PASSWORDS=1); for tests and demos only")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate configuration and policies, then lint")
    _add_config(check)
    check.add_argument("--print", dest="show", action="store_true",
                       help="also print the effective configuration, secrets masked")
    check.set_defaults(func=cmd_check)

    init = sub.add_parser("init", help="write a starter configuration for your own shop")
    init.add_argument("dir", metavar="DIR")
    init.add_argument("--force", action="store_true", help="overwrite existing files")
    init.set_defaults(func=cmd_init)
    migrate = sub.add_parser("migrate", help="bring the directory schema up to date, once")
    _add_config(migrate)
    migrate.set_defaults(func=cmd_migrate)

    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.cli import policy as policy_cli
    policy_cli.register(sub)
    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.cli import audit as audit_cli
    audit_cli.register(sub)
    bench = sub.add_parser(
        "bench", add_help=False, help="measure the gateway against baselines (from a checkout)",
        description="Runs the benchmark in bench/ of the source checkout (python -m bench).")
    bench.set_defaults(func=cmd_bench, rest=[])  # main() hands the words over unparsed
    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.cli import directory as directory_cli
    directory_cli.register(sub)
    return parser


def cmd_bench(args: argparse.Namespace) -> int:
    """Hands over to the benchmark, which is not part of the installed package."""
    try:
        from bench import cli as bench_cli
    except ImportError:
        # Started from the root of a checkout: the bench folder sits beside gateway/.
        if not (Path.cwd() / "bench" / "runner.py").is_file():
            print("csr-gateway bench: the benchmark is not installed with the package; run it "
                  "from a source checkout: cd csr-gateway && python -m bench --help",
                  file=sys.stderr)
            return 2
        sys.path.insert(0, str(Path.cwd()))
        from bench import cli as bench_cli
    return bench_cli.main(args.rest, prog="csr-gateway bench")


def cmd_run(args: argparse.Namespace) -> int:
    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.app.server import c_parser_active, run
    settings = settings_or_report(args.config)
    if settings is None:
        return 2
    settings = dataclasses.replace(settings, host=args.host or settings.host,
                                   port=args.port or settings.port)
    if settings.require_c_parser and not c_parser_active() and not args.allow_python_parser:
        print("csr-gateway: aiohttp's C HTTP parser is not active (AIOHTTP_NO_EXTENSIONS?); "
              "refusing to start. Pass --allow-python-parser to override.", file=sys.stderr)
        return 2
    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.cli.checks import raise_if_unusable
    from gateway.config.load import ConfigError

    try:
        raise_if_unusable(args.config, settings)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"csr-gateway: cannot start: {problem}", file=sys.stderr)
        return 1
    STARTUP_ERRORS = startup_errors()
    try:
        if not (args.allow_demo_passwords or os.environ.get("CSRGW_ALLOW_DEMO_PASSWORDS") == "1"):
            refusal = _demo_password_refusal(settings)
            if refusal:
                print(f"csr-gateway: {refusal}", file=sys.stderr)
                return 1
        return run(settings, args.workers or settings.workers)
    except STARTUP_ERRORS as exc:  # a port in use, an unwritable path, a missing key
        print(f"csr-gateway: cannot start: {one_line(exc)}", file=sys.stderr)
        return 1


def _demo_password_refusal(settings: Settings) -> str | None:
    # each command loads only what it runs: `--help` and the tools stay light
    import asyncio

    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.directory.safety import refuse_demo_passwords

    return asyncio.run(refuse_demo_passwords(settings.directory.url, settings.directory.seed))


def cmd_check(args: argparse.Namespace) -> int:
    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.cli.checks import check_config

    return check_config(args.config, show=args.show)


def cmd_init(args: argparse.Namespace) -> int:
    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.cli.init import write_starter

    return write_starter(args.dir, force=args.force)


def cmd_migrate(args: argparse.Namespace) -> int:
    """What `run --workers N` does before forking, for a deployment step of its own."""
    # each command loads only what it runs: `--help` and the tools stay light
    from gateway.app.server import prepare_directory
    settings = settings_or_report(args.config)
    if settings is None:
        return 2
    try:
        revision = prepare_directory(settings)
    except Exception as exc:  # a database that cannot be reached is one line, not a trace
        print(f"csr-gateway migrate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"directory schema at revision {revision}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the directory logs its upgrades
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["bench"]:  # every option after it belongs to the benchmark's own parser
        return cmd_bench(argparse.Namespace(rest=words[1:]))
    args = build_parser().parse_args(words)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
