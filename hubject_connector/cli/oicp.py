"""The ``oicp`` commands: validate a message file, list the operation table.

They read the pure protocol layer (``oicp.messages``, ``oicp.operations``) and do the I/O
that the layer must not: files, stdin, stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

import structlog

from hubject_connector import cli
from hubject_connector.oicp import messages, patterns
from hubject_connector.oicp.codec import OicpValidationError
from hubject_connector.oicp.conformance import CheckContext
from hubject_connector.oicp.context import review
from hubject_connector.oicp.evse import PushEvseData
from hubject_connector.oicp.operations import OPERATIONS

log = structlog.get_logger(__name__)


def register(subparsers: Any) -> None:
    """Add ``oicp validate`` and ``oicp operations`` to the command line."""
    oicp = subparsers.add_parser(
        "oicp", help="OICP 2.3 tools: validate messages, list operations",
        description="Tools for OICP 2.3 messages and operations.",
    )
    commands = oicp.add_subparsers(title="oicp commands", metavar="COMMAND")
    oicp.set_defaults(handler=lambda _args: cli.print_usage(oicp))

    validate = commands.add_parser(
        "validate",
        help="check a JSON message against the OICP 2.3 rules",
        description=(
            "Check a JSON message against the OICP 2.3 rules (schema, ID patterns, length "
            "limits, cross-field rules, the rules of the text specification listed in "
            "docs/conformance.md). Prints 'valid' and exits 0, or one line per problem as "
            "'pointer: message' and exits 1. Warnings (a time written in UTC with 'Z' in a "
            "CPO request) are printed as 'warning: pointer: message' and do not change the "
            "exit code. Times in the future are judged by this machine's clock. An unknown "
            "message name exits 2."
        ),
    )
    validate.add_argument(
        "message",
        metavar="MESSAGE",
        help="message name, e.g. eRoamingPushEvseData, eRoamingAcknowledgement, "
             "eRoamingChargingNotification; an operation name (PushEvseData) means its request",
    )
    validate.add_argument("file", metavar="FILE", help="the JSON file, or - for stdin")
    validate.add_argument(
        "--operator-id", metavar="ID", default=None,
        help="the OperatorID the message is sent as (the one in the path): the body's "
             "OperatorID must be it, and every EvseID must belong to it or to a "
             "--sub-operator-id",
    )
    validate.add_argument(
        "--sub-operator-id", metavar="ID", action="append", default=[],
        help="a sub-operator whose EvseIDs the operator may send (repeatable)",
    )
    validate.add_argument(
        "--evse-data", metavar="FILE", default=None,
        help="an eRoamingPushEvseData file: each EVSE's CalibrationLawDataAvailability "
             "(a CDR for an EVSE with External must carry SignedMeteringValues)",
    )
    validate.set_defaults(handler=validate_command)

    operations = commands.add_parser(
        "operations",
        help="list the OICP operations the connector knows",
        description="List every OICP operation: direction, path, request and answer "
                    "messages, Hubject's rate limit (calls per minute).",
    )
    operations.add_argument("--json", action="store_true", help="print JSON instead of a table")
    operations.set_defaults(handler=operations_command)


def known_message_names() -> list[str]:
    """Every name ``oicp validate`` accepts as a message, sorted."""
    return messages.message_names()


def resolve_message_name(name: str) -> str | None:
    """The message name meant by ``name`` (a message or an operation name), or None."""
    if name in known_message_names():
        return name
    if name in OPERATIONS:
        return OPERATIONS[name].request
    return None


def validate_command(args: argparse.Namespace) -> int:
    """Handler of ``oicp validate``."""
    name = resolve_message_name(args.message)
    if name is None:
        cli.error(f"unknown OICP message {args.message!r}; known messages:")
        for known in known_message_names():
            print(f"  {known}", file=sys.stderr)
        print(f"or an operation name: {', '.join(OPERATIONS)}", file=sys.stderr)
        return cli.EXIT_USAGE
    body = cli.read_input(args.file)
    if body is None:
        return cli.EXIT_USAGE
    context = _context(args)
    if context is None:
        return cli.EXIT_USAGE
    log.debug("validating", message=name, source=args.file, size=len(body))
    result = review(name, body, context)
    for issue in result.errors:
        print(issue)
    for warning in result.warnings:
        print(f"warning: {warning}")
    if not result.ok:
        log.debug("invalid", message=name, problems=len(result.errors))
        return cli.EXIT_PROBLEM
    # The decoded message may hold contract IDs and card UIDs: the log masks them.
    log.debug("valid", message=name, decoded=result.message)
    print("valid")
    return cli.EXIT_OK


def _context(args: argparse.Namespace) -> CheckContext | None:
    """What the context rules need, from the options; None (said on stderr) if unusable."""
    for option, value in [("--operator-id", args.operator_id)] + [
        ("--sub-operator-id", sub) for sub in args.sub_operator_id
    ]:
        if value is not None and not patterns.matches("OperatorID", value):
            cli.error(f"{option}: {value!r} is not an OperatorID (e.g. DE*ABC)")
            return None
    if args.sub_operator_id and args.operator_id is None:
        cli.error("--sub-operator-id needs --operator-id")
        return None
    calibration_law: dict[str, str] = {}
    if args.evse_data is not None:
        body = cli.read_input(args.evse_data)
        if body is None:
            return None
        try:
            push = messages.decode_message(PushEvseData.OICP_NAME, body)
        except OicpValidationError as exc:
            cli.error(f"--evse-data: {args.evse_data} is not a valid eRoamingPushEvseData:")
            for issue in exc.issues:
                cli.error(str(issue))
            return None
        assert isinstance(push, PushEvseData)
        calibration_law = {
            record.evse_id: record.calibration_law_data_availability.value
            for record in push.operator_evse_data.evse_data_records
        }
    return CheckContext(
        operator_id=args.operator_id,
        sub_operator_ids=tuple(args.sub_operator_id),
        now=datetime.now(UTC),
        calibration_law=calibration_law,
    )


def operations_command(args: argparse.Namespace) -> int:
    """Handler of ``oicp operations``."""
    if args.json:
        rows = [
            {
                "name": op.name,
                "version": op.version,
                "direction": str(op.direction),
                "path": op.path,
                "request": op.request,
                "response": op.response,
                "rate_per_minute": op.rate_per_minute,
                "serialized": op.serialized,
                "retry": str(op.retry),
            }
            for op in OPERATIONS.values()
        ]
        print(json.dumps(rows, indent=2))
        return cli.EXIT_OK
    headers = ["OPERATION", "VERSION", "DIRECTION", "PATH", "REQUEST", "RESPONSE", "RATE/MIN"]
    table = [
        [op.name, op.version, str(op.direction), op.path, op.request, op.response,
         "-" if op.rate_per_minute is None else str(op.rate_per_minute)]
        for op in OPERATIONS.values()
    ]
    widths = [max(len(row[i]) for row in [headers, *table]) for i in range(len(headers))]
    for row in [headers, *table]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return cli.EXIT_OK
