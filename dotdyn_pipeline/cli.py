"""`dotdyn`: run the pipeline on the sandbox, serve the sandbox, benchmark, and check a setup."""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
from pathlib import Path

#: `dotdyn bench NAME` -> the module that implements it (`add_arguments(parser)`, `run(args) -> dict`).
BENCHMARKS: dict[str, str] = {
    "extract": "dotdyn_pipeline.bench.extract",
    "load": "dotdyn_pipeline.bench.load",
    "audience": "dotdyn_pipeline.bench.audience",
    "dynamic-list": "dotdyn_pipeline.bench.dynamic_list",
    "engagement": "dotdyn_pipeline.bench.engagement",
    "consent": "dotdyn_pipeline.bench.consent",
    "provision": "dotdyn_pipeline.bench.provision",
}


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _sandbox_up(args: argparse.Namespace) -> int:
    from dotdyn_pipeline.sandbox.context import SandboxSettings
    from dotdyn_pipeline.sandbox.server import run

    settings = SandboxSettings(seed=args.seed, contacts=args.contacts, leads=args.leads, accounts=args.accounts,
                               email_accounts=args.email_accounts, days=args.days,
                               token_lifetime=args.token_lifetime, bare=args.bare, options=dict(args.option))
    run(Path(args.dir), settings)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from dotdyn_pipeline.demo import run_demo
    from dotdyn_pipeline.runtime.process_tree import stop_signals_interrupt

    with stop_signals_interrupt():  # a SIGTERM during the pipeline's runs still stops the sandbox
        return run_demo(sandbox_dir=args.sandbox, ui=args.ui, port=args.port)


def _dev(args: argparse.Namespace) -> int:
    from dotdyn_pipeline.instance import prepare_dagster_home
    from dotdyn_pipeline.settings import Settings
    from dotdyn_pipeline.ui import serve_ui

    prepare_dagster_home(Settings.from_env())
    return serve_ui(args.host, args.port)


def _doctor(args: argparse.Namespace) -> int:
    from dotdyn_pipeline.doctor import run_doctor

    return run_doctor(as_json=args.json)


def _provision(args: argparse.Namespace) -> int:
    from dotdyn_pipeline.solution.provision import run_command

    return run_command(dry_run=args.dry_run, as_json=args.json, key_timeout=args.key_timeout)


def _bench(args: argparse.Namespace) -> int:
    result = importlib.import_module(BENCHMARKS[args.benchmark]).run(args)
    print(json.dumps(result, sort_keys=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dotdyn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the whole pipeline on the sandbox and print a summary")
    demo.add_argument("--sandbox", metavar="DIR", help="use the sandbox already serving from DIR (left running)")
    demo.add_argument("--ui", action="store_true", help="afterwards, keep the sandbox up and start the Dagster UI")
    demo.add_argument("--port", type=int, default=3000, help="the Dagster UI's port on 127.0.0.1 (with --ui)")
    demo.set_defaults(handler=_demo)

    dev = commands.add_parser("dev", help="start the Dagster UI and daemon with the configured instance")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(handler=_dev)

    provision = commands.add_parser("provision", help="create the solution's tables, columns, keys and roles in "
                                                      "the organisation (what exists is left as it is)")
    provision.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    provision.add_argument("--json", action="store_true", help="end with one JSON line: changes, created, ...")
    provision.add_argument("--key-timeout", type=float, default=600.0,
                           help="seconds to wait for the alternate keys' indexes to become Active")
    provision.set_defaults(handler=_provision)

    doctor = commands.add_parser("doctor", help="check the configuration and the stores it names")
    doctor.add_argument("--json", action="store_true", help="print one JSON object with the checks")
    doctor.set_defaults(handler=_doctor)

    sandbox = commands.add_parser("sandbox", help="local stand-ins for Entra ID, Dataverse and Dotdigital")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", required=True)
    up = sandbox_commands.add_parser("up", help="serve the sandbox in the foreground; writes DIR/sandbox.json")
    up.add_argument("--dir", required=True, help="folder for the CA, the data and sandbox.json")
    up.add_argument("--seed", type=int, default=7)
    up.add_argument("--contacts", type=int, default=2_000)
    up.add_argument("--leads", type=int, default=500)
    up.add_argument("--accounts", type=int, default=200)
    up.add_argument("--email-accounts", type=int, default=2)
    up.add_argument("--days", type=int, default=30, help="days of generated engagement history")
    up.add_argument("--token-lifetime", type=int, default=3_600, help="access token lifetime, seconds")
    up.add_argument("--bare", action="store_true",
                    help="Dataverse without the solution (Microsoft's tables and the seeded people), to provision")
    up.add_argument("--option", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                    help="a service-specific switch (see the README's sandbox section)")
    up.set_defaults(handler=_sandbox_up)

    bench = commands.add_parser("bench", help="benchmarks against the sandbox; last line is JSON")
    bench_commands = bench.add_subparsers(dest="benchmark", required=True)
    for name, module in BENCHMARKS.items():
        sub = bench_commands.add_parser(name, help=importlib.import_module(module).__doc__)
        importlib.import_module(module).add_arguments(sub)
        sub.set_defaults(handler=_bench)
    return parser


def _operational_errors() -> tuple[type[Exception], ...]:
    """Errors that are answers (a refusal, an outage that outlasted its retries, a bad setting), not bugs."""
    from dotdyn_pipeline.connectors.dataverse import DataverseError
    from dotdyn_pipeline.connectors.dotdigital import DotdigitalError
    from dotdyn_pipeline.settings import SettingsError

    return DataverseError, DotdigitalError, SettingsError


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:  # asked to stop; the children were stopped on the way out
        return 128 + signal.SIGINT  # as a shell reports a command ended by Ctrl-C
    except Exception as error:
        if not isinstance(error, _operational_errors()):
            raise
        # the services or the configuration said no: say what, without a traceback
        print(f"dotdyn {args.command}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
