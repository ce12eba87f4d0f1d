"""The ``send`` command: validate one OICP message file and send it to Hubject.

For onboarding and debugging: the same client, certificates, retries and rate limits as
the service, one message at a time. The answer is printed as JSON on stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Coroutine
from typing import Any

import structlog

from hubject_connector import cli
from hubject_connector.config import HubjectConfig
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.hubject.errors import OicpStatusError
from hubject_connector.oicp import codec, messages, patterns
from hubject_connector.oicp.codec import OicpValidationError
from hubject_connector.oicp.operations import OPERATIONS, Direction, Operation

_log = structlog.get_logger(__name__)


def _outbound() -> list[str]:
    return [n for n, op in OPERATIONS.items() if op.direction is Direction.CPO_TO_HUBJECT]


def register(subparsers: Any) -> None:
    """Add ``send`` to the command line."""
    parser = subparsers.add_parser(
        "send",
        help="validate an OICP message file and send it to Hubject",
        description=(
            "Validate FILE as the request of OPERATION, then send it to Hubject (or the "
            "configured base_url) with the configured client certificate, retries and "
            "rate limits, and print the answer as JSON. Exit 0 when Hubject answered "
            "Result true (AuthorizeStart/Stop: Authorized), 1 otherwise, 2 for bad usage "
            "or configuration. An invalid file is not sent: each problem is printed as "
            "'pointer: message' and the exit code is 1."
        ),
    )
    cli.add_config_option(parser)
    parser.add_argument("operation", metavar="OPERATION",
                        help=f"operation name: {', '.join(_outbound())}")
    parser.add_argument("file", metavar="FILE", help="the JSON request, or - for stdin")
    parser.add_argument("--operator-id", default=None,
                        help="OperatorID in the path (default: hubject.operator_id)")
    parser.set_defaults(handler=send_command)


def _operation(name: str) -> Operation | None:
    op = OPERATIONS.get(name) or next(
        (o for o in OPERATIONS.values() if o.request == name), None
    )
    if op is None or op.direction is not Direction.CPO_TO_HUBJECT:
        print(f"send: {name!r} is not an operation sent to Hubject; choose one of: "
              f"{', '.join(_outbound())}", file=sys.stderr)
        return None
    return op


def _succeeded(answer: Any) -> bool:
    if hasattr(answer, "result"):
        return bool(answer.result)
    return bool(getattr(answer, "authorized", False))


def _print_answer(answer: Any) -> None:
    body = codec.encode_json(answer) if isinstance(answer, dict) else codec.encode(answer)
    sys.stdout.write(body.decode("utf-8") + "\n")


def send_command(args: argparse.Namespace) -> int | Coroutine[Any, Any, int]:
    """Handler of ``send``: checks the file, then returns the sending coroutine."""
    op = _operation(args.operation)
    if op is None:
        return cli.EXIT_USAGE
    if args.operator_id is not None and not patterns.matches("OperatorID", args.operator_id):
        print(f"--operator-id: {args.operator_id!r} is not an OperatorID (e.g. DE*ABC)",
              file=sys.stderr)
        return cli.EXIT_USAGE
    body = cli.read_input(args.file)
    if body is None:
        return cli.EXIT_USAGE
    try:
        request = messages.decode_message(op.request, body)
    except OicpValidationError as exc:
        print(f"{args.file} is not a valid {op.request}; not sent:", file=sys.stderr)
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return cli.EXIT_PROBLEM
    config = cli.config_from_args(args, check_files=True)
    return _send(config.hubject, op, request, args.operator_id)


async def _send(
    config: HubjectConfig, op: Operation, request: object, operator_id: str | None
) -> int:
    async with HubjectClient(config) as client:
        try:
            answer = await client.call(op, request, operator_id=operator_id)
        except OicpStatusError as exc:
            if exc.answer is not None:
                _print_answer(exc.answer)
            print(f"send: {exc}", file=sys.stderr)
            return cli.EXIT_PROBLEM
    _print_answer(answer)
    return cli.EXIT_OK if _succeeded(answer) else cli.EXIT_PROBLEM
