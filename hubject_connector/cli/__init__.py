"""The ``hubject-connector`` command line.

Subcommands come from feature modules: each module listed in ``COMMAND_MODULES`` has a
``register(subparsers)`` function that adds its parser and sets ``handler`` with
``set_defaults(handler=...)``. A handler takes the parsed ``argparse.Namespace`` and returns
the exit code; an ``async def`` handler is run with ``asyncio.run``.

Exit codes: 0 success, 1 the command ran and found a problem (e.g. an invalid message),
2 bad usage or bad configuration, 130 interrupted.

What a person sees: every error line on stderr starts with ``hubject-connector: ``
(``error``), every configuration problem is listed at once, and logs are console lines
on a terminal and JSON lines otherwise, unless a format was chosen.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import os
import sys
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from hubject_connector.config import Config, ConfigErrors, load_config
from hubject_connector.errors import ConfigError, ConnectorError
from hubject_connector.logs import LogFormat, LogLevel, configure_logging

#: Modules contributing subcommands, each with ``register(subparsers) -> None``.
COMMAND_MODULES: list[str] = [
    "hubject_connector.cli.config",
    "hubject_connector.cli.oicp",
    "hubject_connector.cli.certs",
    "hubject_connector.cli.send",
    "hubject_connector.cli.simulator",
    "hubject_connector.cli.dlq",
    "hubject_connector.cli.serve",
    "hubject_connector.cli.sandbox",
]

PROG: Final = "hubject-connector"
LOG_FORMATS: Final[tuple[str, ...]] = typing.get_args(LogFormat)
LOG_LEVELS: Final[tuple[str, ...]] = typing.get_args(LogLevel)
EXIT_OK: Final = 0
EXIT_PROBLEM: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


def error(message: str) -> None:
    """Write ``message`` on stderr, each line prefixed ``hubject-connector: ``."""
    for line in message.splitlines() or [""]:
        print(f"{PROG}: {line}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """argparse with the one error prefix (subcommands would print their own name)."""

    def error(self, message: str) -> typing.NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{PROG}: {message} (see {self.prog} --help)\n")


def print_usage(parser: argparse.ArgumentParser) -> int:
    """Handler of a command group run without a subcommand: its help, as a usage error."""
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def read_input(file: str) -> bytes | None:
    """The bytes of FILE, or of stdin for ``-``; None (reason on stderr) when unreadable."""
    try:
        return sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        error(f"cannot read {file}: {exc.strerror or exc}")
        return None


def build_parser() -> argparse.ArgumentParser:
    """The parser with the global options and every registered subcommand."""
    parser = _Parser(
        prog=PROG,
        description="A CPO-side OICP 2.3 connector to the Hubject eRoaming platform.",
    )
    parser.add_argument(
        "--log-format", choices=LOG_FORMATS, default=None,
        help="log line format (default: $HUBJECT_CONNECTOR_LOGGING__FORMAT, else console "
             "on a terminal and json otherwise)",
    )
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default=None,
        help="lowest level logged (default: $HUBJECT_CONNECTOR_LOGGING__LEVEL or info)",
    )
    parser.add_argument(
        "--config", type=Path, default=None, metavar="FILE",
        help="configuration file, TOML (default: $HUBJECT_CONNECTOR_CONFIG)",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(subparsers)
    return parser


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """Let a subcommand take ``--config FILE`` after its name too.

    The default is suppressed so that a global ``--config`` before the subcommand is kept.
    """
    parser.add_argument(
        "--config", type=Path, default=argparse.SUPPRESS, metavar="FILE",
        help="configuration file, TOML (default: $HUBJECT_CONNECTOR_CONFIG)",
    )


def config_from_args(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str] | None = None,
    check_files: bool = False,
) -> Config:
    """Load the configuration a command was pointed at (``--config``, then the environment).

    Unless ``--log-format``/``--log-level`` were given, logging is reconfigured from the
    loaded ``[logging]`` section. Raises ``ConfigErrors``.
    """
    config = load_config(
        getattr(args, "config", None), os.environ if env is None else env,
        check_files=check_files,
    )
    log_format = getattr(args, "log_format", None)
    log_level = getattr(args, "log_level", None)
    if log_format is None or log_level is None:
        configure_logging(log_format or config.logging.format, log_level or config.logging.level)
    return config


def _from_env(
    value: str | None, variable: str, choices: Sequence[str], default: str | None
) -> str | None:
    # Only to choose how to log before the configuration is read; an invalid value is
    # reported by the loader, not here.
    given = os.environ.get(variable, "").strip().lower()
    if value is not None:
        return value
    return given if given in choices else default


def print_config_errors(problem: ConfigError) -> None:
    """Write each configuration problem as ``key: problem`` on stderr."""
    errors = problem.errors if isinstance(problem, ConfigErrors) else [problem]
    for item in errors:
        error(f"{item.key}: {item.message}")


def run(args: argparse.Namespace) -> int:
    """Run the handler that parsing selected; async handlers get an event loop."""
    handler: Any = args.handler
    result = handler(args)
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return int(result)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hubject-connector`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    log_format = _from_env(args.log_format, "HUBJECT_CONNECTOR_LOGGING__FORMAT", LOG_FORMATS,
                           None)
    configure_logging(
        # None: console lines when a person reads stderr on a terminal, JSON otherwise.
        "console" if log_format == "console" else "json" if log_format == "json" else None,
        _from_env(args.log_level, "HUBJECT_CONNECTOR_LOGGING__LEVEL", LOG_LEVELS, "info")
        or "info",
    )
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return run(args)
    except ConfigError as exc:
        print_config_errors(exc)
        return EXIT_USAGE
    except ConnectorError as exc:
        error(str(exc))
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
