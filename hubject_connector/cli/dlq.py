"""The ``dlq`` commands: look at dead letters, replay them (corrected) or drop them.

Works on the configured bus, RabbitMQ or embedded alike, through the bus's dead-letter
methods (``Bus.list_dead_letters`` and friends), with the embedded bus's HTTP API and
webhook off (``serve=False``): running it beside the service changes nothing else.

* ``dlq list [--limit N] [--json]``: the oldest dead letters, one line each;
* ``dlq show ID [--json]``: one dead letter in full, its body pretty-printed;
* ``dlq replay ID [--body FILE]``: put it back on its queue, retries reset; ``--body``
  replaces the message with a corrected one (checked against the bus contract first:
  an invalid body is not replayed);
* ``dlq drop ID``: remove it for good.

Exit codes (cli/__init__.py): 0 done, 1 no such dead letter or the bus refused,
2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, Final

from hubject_connector import cli
from hubject_connector.bus.base import Bus, DeadLetter, DeadLetterNotFound
from hubject_connector.bus.contract import ContractError, parse_envelope
from hubject_connector.bus.factory import build_bus
from hubject_connector.bus.topology import connector_queues
from hubject_connector.config import Config

#: Characters of a reason shown on a ``list`` line.
REASON_WIDTH: Final = 100


def register(subparsers: Any) -> None:
    """Add ``dlq`` and its subcommands to the command line."""
    parser = subparsers.add_parser(
        "dlq",
        help="list, show, replay or drop dead letters",
        description=(
            "Inspect and handle the dead-letter queue of the configured bus (RabbitMQ or "
            "embedded): messages that broke the bus contract, that Hubject refused for "
            "good (a CDR), or whose retries were used up. Exit 0 when done, 1 when the "
            "dead letter does not exist or the bus refused, 2 for bad usage or "
            "configuration."
        ),
    )
    cli.add_config_option(parser)
    parser.set_defaults(handler=lambda _args: cli.print_usage(parser))
    commands = parser.add_subparsers(title="subcommands", metavar="SUBCOMMAND")

    listing = commands.add_parser("list", help="the oldest dead letters, one per line")
    cli.add_config_option(listing)
    listing.add_argument("--limit", type=int, default=100, metavar="N",
                         help="show at most N dead letters (default: 100)")
    listing.add_argument("--json", action="store_true",
                         help="print a JSON array instead of lines")
    listing.set_defaults(handler=list_command)

    show = commands.add_parser("show", help="one dead letter in full")
    cli.add_config_option(show)
    show.add_argument("id", metavar="ID", help="the dead letter's id (from `dlq list`)")
    show.add_argument("--json", action="store_true", help="print it as a JSON object")
    show.set_defaults(handler=show_command)

    replay = commands.add_parser(
        "replay", help="put a dead letter back on its queue (optionally corrected)")
    cli.add_config_option(replay)
    replay.add_argument("id", metavar="ID", help="the dead letter's id")
    replay.add_argument(
        "--body", metavar="FILE", default=None,
        help="replace the message with FILE (- for stdin), a corrected message; it must "
             "keep to the bus contract")
    replay.set_defaults(handler=replay_command)

    drop = commands.add_parser("drop", help="remove a dead letter for good")
    cli.add_config_option(drop)
    drop.add_argument("id", metavar="ID", help="the dead letter's id")
    drop.set_defaults(handler=drop_command)


async def _with_bus(config: Config, action: Callable[[Bus], Awaitable[int]]) -> int:
    # The connector's queues are declared (as the service does), so that a replay finds
    # its queue even when the service never ran against this bus.
    bus = build_bus(config.bus, serve=False, queues=connector_queues(config.flows))
    await bus.connect()
    try:
        return await action(bus)
    except DeadLetterNotFound as exc:
        cli.error(f"dlq: {exc} (see `hubject-connector dlq list`)")
        return cli.EXIT_PROBLEM
    finally:
        await bus.close()


def _time(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _body_text(body: bytes) -> str:
    """The body for people: pretty JSON, else the text, else its bytes escaped."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return repr(body)
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def letter_json(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as a JSON object (the body as text, or null when not UTF-8)."""
    try:
        body: str | None = letter.body.decode("utf-8")
    except UnicodeDecodeError:
        body = None
    return {
        "id": letter.id,
        "queue": letter.queue,
        "routing_key": letter.routing_key,
        "message_id": letter.message_id,
        "reason": letter.reason,
        "error": letter.error,
        "retries": letter.retries,
        "dead_lettered_at": _time(letter.dead_lettered_at) if letter.dead_lettered_at else None,
        "headers": dict(letter.headers),
        "body": body,
    }


def list_command(args: argparse.Namespace) -> int | Coroutine[Any, Any, int]:
    """Handler of ``dlq list``."""
    if args.limit < 1:
        cli.error("dlq list: --limit must be at least 1")
        return cli.EXIT_USAGE
    config = cli.config_from_args(args)

    async def action(bus: Bus) -> int:
        letters = await bus.list_dead_letters(limit=args.limit)
        if args.json:
            sys.stdout.write(json.dumps([letter_json(x) for x in letters], indent=2) + "\n")
            return cli.EXIT_OK
        if not letters:
            print("no dead letters")
            return cli.EXIT_OK
        for letter in letters:
            print(f"{letter.id}  {_time(letter.dead_lettered_at)}  {letter.queue}  "
                  f"{letter.routing_key}  message {letter.message_id}  retries "
                  f"{letter.retries}\n    {_one_line(letter.reason, REASON_WIDTH)}")
        print(f"{len(letters)} dead letter{'s' if len(letters) != 1 else ''}"
              + (f" (the oldest {args.limit})" if len(letters) == args.limit else ""))
        return cli.EXIT_OK

    return _with_bus(config, action)


def show_command(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    """Handler of ``dlq show``."""
    config = cli.config_from_args(args)

    async def action(bus: Bus) -> int:
        letter = await bus.get_dead_letter(args.id)
        if args.json:
            sys.stdout.write(json.dumps(letter_json(letter), indent=2) + "\n")
            return cli.EXIT_OK
        body = _body_text(letter.body)
        lines = [
            f"id:               {letter.id}",
            f"queue:            {letter.queue}",
            f"routing key:      {letter.routing_key}",
            f"message id:       {letter.message_id}",
            f"dead-lettered at: {_time(letter.dead_lettered_at)}",
            f"retries:          {letter.retries}",
            f"error:            {letter.error or '-'}",
            f"reason:           {letter.reason}",
        ]
        if letter.headers:
            lines.append("headers:")
            lines.extend(f"  {key}: {value}" for key, value in sorted(letter.headers.items()))
        lines.append("body:")
        lines.append(body)
        print("\n".join(lines))
        return cli.EXIT_OK

    return _with_bus(config, action)


def replay_command(args: argparse.Namespace) -> int | Coroutine[Any, Any, int]:
    """Handler of ``dlq replay``."""
    body: bytes | None = None
    if args.body is not None:
        body = cli.read_input(args.body)
        if body is None:
            return cli.EXIT_USAGE
        try:
            parse_envelope(body)
        except ContractError as exc:
            cli.error(f"dlq replay: {args.body} breaks the bus contract; not replayed:")
            for issue in exc.issues:
                cli.error(f"  {issue}")
            return cli.EXIT_PROBLEM
    config = cli.config_from_args(args)

    async def action(bus: Bus) -> int:
        message_id = await bus.replay_dead_letter(args.id, body=body)
        corrected = " with the corrected body" if body is not None else ""
        print(f"replayed dead letter {args.id}{corrected} as message {message_id}")
        return cli.EXIT_OK

    return _with_bus(config, action)


def drop_command(args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    """Handler of ``dlq drop``."""
    config = cli.config_from_args(args)

    async def action(bus: Bus) -> int:
        await bus.delete_dead_letter(args.id)
        print(f"dropped dead letter {args.id}")
        return cli.EXIT_OK

    return _with_bus(config, action)
