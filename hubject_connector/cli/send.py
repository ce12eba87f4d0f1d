"""The ``send`` command: validate one OICP message file and send it to Hubject.

For onboarding and debugging: the same client, certificates, retries and rate limits as
the service, one message at a time. The answer is printed as JSON on stdout; what went
wrong, a refusal by Hubject (NotAuthorized included) and every change the connector made
to the file's content on the way (a time written with its offset, a spelling corrected,
a field that is not sent) are said on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog

from hubject_connector import cli
from hubject_connector.config import HubjectConfig
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.hubject.errors import OicpStatusError
from hubject_connector.logs import mask_text
from hubject_connector.oicp import codec, messages, patterns, status
from hubject_connector.oicp.codec import OicpValidationError
from hubject_connector.oicp.conformance import CheckContext
from hubject_connector.oicp.context import context_issues, utc_time_warnings
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
        cli.error(f"send: {name!r} is not an operation sent to Hubject; choose one of: "
                  f"{', '.join(_outbound())}")
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
        cli.error(f"--operator-id: {args.operator_id!r} is not an OperatorID (e.g. DE*ABC)")
        return cli.EXIT_USAGE
    body = cli.read_input(args.file)
    if body is None:
        return cli.EXIT_USAGE
    try:
        request = messages.decode_message(op.request, body)
    except OicpValidationError as exc:
        cli.error(f"{args.file} is not a valid {op.request}; not sent:")
        for issue in exc.issues:
            cli.error(str(issue))
        return cli.EXIT_PROBLEM
    config = cli.config_from_args(args, check_files=True)
    if not _fits_context(args, request, body, config.hubject):
        return cli.EXIT_PROBLEM
    for note in rewrites(codec.parse_json(body), codec.dump(request)):
        cli.error(f"note: {mask_text(note)}")
    return _send(config.hubject, op, request, args.operator_id)


def _json_text(value: Any) -> str:
    return codec.encode_json(value).decode("utf-8")


def _same_name(given: str, written: str) -> bool:
    # The spellings found in Hubject's material differ in case or a plural "s"
    # (ChargingStationID/ChargingStationId, Period/Periods).
    return given.lower().rstrip("s") == written.lower().rstrip("s")


def rewrites(given: Any, written: Any, pointer: str = "") -> list[str]:
    """What sending changes in a message: one line per difference between ``given`` (the
    file, parsed) and ``written`` (what goes on the wire), each led by its JSON pointer.

    Times written with another offset form or fraction, enum values and key spellings
    corrected, and fields that are not sent all count; numbers equal in value do not.
    """
    if isinstance(given, dict) and isinstance(written, dict):
        notes: list[str] = []
        spare = [k for k in written if k not in given]
        for key, value in given.items():
            where = f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"
            if key in written:
                notes.extend(rewrites(value, written[key], where))
                continue
            match = next((k for k in spare if _same_name(key, k)), None)
            if match is not None:
                spare.remove(match)
                notes.append(f"{where}: sent as {match!r}, the data-type table's spelling")
                notes.extend(rewrites(value, written[match], where))
            elif value is not None:
                notes.append(f"{where}: not sent: not a field of this message")
        return notes
    if isinstance(given, list) and isinstance(written, list) and len(given) == len(written):
        return [note for i, (g, w) in enumerate(zip(given, written, strict=True))
                for note in rewrites(g, w, f"{pointer}/{i}")]
    if type(given) is type(written) and given == written:
        return []
    if isinstance(given, int | Decimal) and isinstance(written, int | Decimal) and (
        not isinstance(given, bool) and not isinstance(written, bool) and given == written
    ):
        return []
    return [f"{pointer or '/'}: sent as {_json_text(written)} (the file has "
            f"{_json_text(given)})"]


def _fits_context(
    args: argparse.Namespace, request: object, body: bytes, hubject: HubjectConfig
) -> bool:
    """Whether ``request`` keeps the rules that need to know who sends it and when.

    The OperatorID it is sent as (``--operator-id``, else ``hubject.operator_id``) and the
    configured sub-operators decide which OperatorID and EvseIDs it may carry; the clock,
    whether its times may lie in the future (docs/conformance.md). What breaks them is said
    on stderr and nothing is sent. Times written in UTC are warned about, and sent.
    """
    context = CheckContext(
        operator_id=args.operator_id or hubject.operator_id or None,
        sub_operator_ids=hubject.sub_operator_ids,
        now=datetime.now(UTC),
    )
    for warning in utc_time_warnings(request, codec.parse_json(body)):
        cli.error(f"warning: {warning}")
    issues = context_issues(request, context)
    if issues:
        cli.error(f"{args.file} breaks OICP rules when sent as operator "
                  f"{context.operator_id}; not sent:")
        for issue in issues:
            cli.error(str(issue))
    return not issues


async def _send(
    config: HubjectConfig, op: Operation, request: object, operator_id: str | None
) -> int:
    async with HubjectClient(config) as client:
        try:
            answer = await client.call(op, request, operator_id=operator_id)
        except OicpStatusError as exc:
            if exc.answer is not None:
                _print_answer(exc.answer)
            cli.error(str(exc))
            return cli.EXIT_PROBLEM
    _print_answer(answer)
    if _succeeded(answer):
        return cli.EXIT_OK
    cli.error(_refusal(op, answer))
    return cli.EXIT_PROBLEM


def _refusal(op: Operation, answer: Any) -> str:
    """One line for an answer that is no success: NotAuthorized, or Result false."""
    code = answer.status_code
    said = code.description or status.describe(code.code).meaning
    extra = f" ({code.additional_info})" if code.additional_info else ""
    verdict = (f"Hubject answered {answer.authorization_status}"
               if hasattr(answer, "authorization_status") else "Hubject answered Result false")
    return mask_text(f"{op.name}: {verdict}, status {code.code}: {said}{extra}")
