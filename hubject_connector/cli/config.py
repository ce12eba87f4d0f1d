"""The ``check-config`` command: load, validate and print the effective configuration."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, Final

from hubject_connector import cli
from hubject_connector.config import redacted

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")


def register(subparsers: Any) -> None:
    """Add ``check-config`` to the command line."""
    parser = subparsers.add_parser(
        "check-config",
        help="validate the configuration and print it, secrets redacted",
        description=(
            "Load the configuration file and HUBJECT_CONNECTOR_* environment variables, "
            "validate them, and print the effective configuration with secrets redacted. "
            "Exit 0 when valid; otherwise print each problem as 'key: problem' on stderr "
            "and exit 2."
        ),
    )
    cli.add_config_option(parser)
    parser.add_argument(
        "--format", choices=("toml", "json"), default="toml", dest="output_format",
        help="output format (default: toml)",
    )
    parser.add_argument(
        "--check-files", action=argparse.BooleanOptionalAction, default=True,
        help="check that certificate, key and password files exist and are readable "
             "(default: yes)",
    )
    parser.set_defaults(handler=check_config)


def check_config(args: argparse.Namespace) -> int:
    """Handler of ``check-config``."""
    config = cli.config_from_args(args, check_files=args.check_files)
    data = redacted(config)
    if args.output_format == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(to_toml(data))
    return cli.EXIT_OK


def to_toml(data: dict[str, Any]) -> str:
    """Plain data (as ``redacted`` returns) as a TOML document; ``None`` is left unset."""
    lines: list[str] = []
    _table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _string(text: str) -> str:
    # A JSON string is a TOML basic string, except that TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007F")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _table(data: dict[str, Any], path: list[str], lines: list[str]) -> None:
    if path:
        lines.extend(["", "[" + ".".join(_key(p) for p in path) + "]"])
    for name, value in data.items():
        if value is None:
            lines.append(f"# {_key(name)} is not set")
        elif not isinstance(value, dict):
            lines.append(f"{_key(name)} = {_scalar(value)}")
    for name, value in data.items():
        if isinstance(value, dict):
            _table(value, [*path, name], lines)
