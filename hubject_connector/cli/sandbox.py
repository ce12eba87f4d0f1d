"""``hubject-connector sandbox`` (``make run``): the whole connector, a fake Hubject and a
demo backend on this machine, in one command; Ctrl-C stops it all.

See ``hubject_connector.sandbox``. Exit codes: 0 after Ctrl-C (or SIGTERM) when the demo
completed or was interrupted, 1 when a step of the demo failed, 2 when it cannot start
(a port in use: ``--ports auto`` picks free ones).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

from hubject_connector import cli
from hubject_connector.errors import ConfigError, ConnectorError
from hubject_connector.logs import configure_logging
from hubject_connector.sandbox import (
    DEFAULT_DIRECTORY,
    DEMO_BACKEND,
    PORTS_ENV,
    Ports,
    SandboxOptions,
    options_with_ports,
    ports_from_environment,
    run_sandbox,
)

#: Log lines of the service below this level are not shown unless --log-level says so:
#: the sandbox's own lines tell the story.
SANDBOX_LOG_LEVEL = "warning"

_DEFAULTS = Ports()


def register(subparsers: Any) -> None:
    """Add ``sandbox`` to the command line."""
    parser = subparsers.add_parser(
        "sandbox",
        help="run the connector with a fake Hubject and a demo backend (make run)",
        description=(
            "Write a development PKI and a configuration under var/sandbox/, start the "
            "Hubject simulator and the connector (embedded bus, SQLite state), run the demo "
            "backend (examples/demo_backend.py): it pushes two EVSEs, changes a status, "
            "authorizes a card, answers a remote start sent by the simulator acting as an "
            "EMP, and sends the CDR. Each step is printed, then a summary of what the "
            "simulator received; then everything keeps serving (the URLs are printed) "
            "until Ctrl-C. Exit 0 after Ctrl-C, 1 when a step failed, 2 when it cannot "
            "start."
        ),
    )
    parser.add_argument(
        "--ports", choices=("default", "auto"), default=None,
        help=f"'default': simulator {_DEFAULTS.simulator}, inbound {_DEFAULTS.inbound}, ops "
             f"{_DEFAULTS.ops}, bus API {_DEFAULTS.bus}, backend {_DEFAULTS.backend}; 'auto': "
             f"free ports (default: ${PORTS_ENV}, else default)",
    )
    for name, what in (("simulator", "the Hubject simulator"),
                       ("inbound", "the connector's inbound HTTPS server"),
                       ("ops", "the ops server (/metrics, /healthz, /readyz)"),
                       ("bus", "the embedded bus's HTTP API"),
                       ("backend", "the demo backend's webhook")):
        parser.add_argument(f"--{name}-port", type=_port, default=None, metavar="PORT",
                            dest=f"{name}_port", help=f"port of {what} (0: a free one)")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIRECTORY, dest="directory",
                        help=f"where to write the sandbox's files (default: {DEFAULT_DIRECTORY})")
    parser.add_argument("--backend", type=Path, default=DEMO_BACKEND, metavar="FILE",
                        help="the backend program, run with this Python (default: the demo, "
                             "examples/demo_backend.py)")
    parser.add_argument("--once", action="store_true",
                        help="stop after the summary instead of serving until Ctrl-C")
    parser.set_defaults(handler=sandbox_command)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number from 0 to 65535")
    return port


def options_from_args(args: argparse.Namespace) -> SandboxOptions:
    """The sandbox options the command line (and ``$HUBJECT_SANDBOX_PORTS``) describe."""
    choice = args.ports or ports_from_environment()
    ports = Ports.auto() if choice == "auto" else Ports()
    overrides = [(name, getattr(args, f"{name}_port"))
                 for name in ("simulator", "inbound", "ops", "bus", "backend")]
    return options_with_ports(SandboxOptions(directory=args.directory, backend=args.backend),
                              ports, overrides)


async def sandbox_command(args: argparse.Namespace) -> int:
    """Handler of ``sandbox``: run until SIGINT or SIGTERM, then stop everything."""
    if args.log_level is None:
        configure_logging(args.log_format or "console", SANDBOX_LOG_LEVEL)
    if (args.ports or ports_from_environment()) not in ("default", "auto"):
        cli.error(f"${PORTS_ENV} must be 'default' or 'auto'")
        return cli.EXIT_USAGE
    options = options_from_args(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        return await run_sandbox(options, stop, once=args.once)
    except ConnectorError as exc:
        if isinstance(exc, ConfigError):
            cli.print_config_errors(exc)
        else:
            cli.error(str(exc))
        cli.error("the sandbox could not start; if a port is in use, "
                  "`hubject-connector sandbox --ports auto` picks free ones")
        return cli.EXIT_USAGE if isinstance(exc, ConfigError) else cli.EXIT_PROBLEM
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
