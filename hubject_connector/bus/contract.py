"""The bus message contract: the envelope, the message types and their validation.

Every message between the CPO backend and the connector, in both directions, is one JSON
object: a CloudEvents 1.0 event in structured mode. ``type`` names the message and its
version (``MessageType``); ``data`` is a JSON object in snake_case whose JSON Schema ships
in ``hubject_connector/bus/schemas/`` (``<type without "com.hubject-connector.">.json``).
Amounts and energies are decimal strings, times carry a UTC offset. docs/contract.md
explains it all to a backend developer; docs/asyncapi.yaml describes the channels.

This module is pure: besides reading the packaged schema files once (through
``importlib.resources``) it does no I/O. ``parse_envelope`` checks what arrives,
``make_envelope`` / ``make_reply`` / ``make_delivery_result`` build what leaves and check it
too, so a bug in the connector cannot put a message on the bus that breaks the contract.
A message that breaks the contract raises ``ContractError``: permanent, never retried, its
``issues`` name each offending field by JSON pointer from the envelope's root
(``/data/evse_id: does not match the EvseID pattern, e.g. "DE*ABC*E123456*1"``).

Note for the bus adapters (bus/base.py, rabbitmq.py, embedded.py); docs/contract.md
documents exactly these names, so change both together:

* RabbitMQ: one durable topic exchange, ``RabbitMQConfig.exchange`` ("hubject-connector").
  The routing key of every message is its envelope ``type``. Each message type the
  connector consumes is bound to the queue ``f"{queue_prefix}.{spec.queue}"``
  (``MESSAGE_SPECS[type].queue``: "evse", "evse-status", "authorization", "notifications",
  "cdr", "pricing"), so a backlog of one kind never blocks another. Commands go to
  ``{queue_prefix}.backend.commands`` and delivery results to
  ``{queue_prefix}.backend.results``, the backend's queues. Dead letters go to
  ``RabbitMQConfig.dead_letter_exchange`` ("hubject-connector.dlx", topic) and its queue
  ``{queue_prefix}.dead-letters`` (bound with "#").
* Request/reply on RabbitMQ: the requester sets the AMQP ``reply_to`` and
  ``correlation_id`` (= the request envelope's ``id``) properties; the reply goes to the
  default exchange with routing key ``reply_to``, AMQP ``correlation_id`` and envelope
  ``correlationid`` both equal to the request's ``id``. Kinds with ``queue=None`` (replies)
  travel that way only. Publish with ``content_type="application/cloudevents+json"``,
  persistent delivery, ``message_id`` = envelope ``id``, ``type`` = envelope ``type``.
* Embedded bus: ``POST /v1/messages`` takes one envelope and answers 202 once stored
  (400 with the ``ContractError`` text otherwise). Every connector-to-backend message
  (commands, authorization replies, delivery results) is POSTed to the webhook; for a
  command the response body is the reply envelope, for the others any 2xx will do.
  Authorization replies and delivery results can also be read with
  ``GET /v1/results?after=<cursor>``, with or without a webhook.
* Commands carry the ``deadline`` extension; a reply after it is not used.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from functools import cache
from importlib import resources
from typing import Any, Final

from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import extend
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from hubject_connector.bus.schema_compiler import Check, compile_schema
from hubject_connector.errors import BusError

#: The prefix of every message type.
TYPE_PREFIX: Final = "com.hubject-connector."
#: The base of the schemas' ``$id``s: identifiers, not a place to download them from.
SCHEMA_BASE_URI: Final = "https://hubject-connector.invalid/schemas/bus/"
#: ``source`` of the messages the connector sends, unless told otherwise.
DEFAULT_SOURCE: Final = "urn:hubject-connector"
#: CloudEvents structured mode's media type, for the transport's content type.
CLOUDEVENTS_CONTENT_TYPE: Final = "application/cloudevents+json"
SPEC_VERSION: Final = "1.0"
DATA_CONTENT_TYPE: Final = "application/json"

# Envelope attributes the Envelope dataclass has fields for.
_CORE_ATTRIBUTES: Final = frozenset(
    {"specversion", "id", "source", "type", "time", "datacontenttype", "data", "subject",
     "correlationid", "replyto", "deadline"}
)
#: At most this many issues are listed in a ContractError.
MAX_ISSUES: Final = 20
#: An issue's pointer and message are cut to these lengths in its text (a hostile key of a
#: megabyte must not make a megabyte of error).
_MAX_POINTER_CHARS: Final = 200
_MAX_MESSAGE_CHARS: Final = 500
#: A JSON escape of a UTF-16 surrogate; only such text can hold an unpaired one.
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


class MessageType(StrEnum):
    """Every message type of the contract, by its envelope ``type`` string."""

    # Backend -> connector: events.
    EVSE_UPSERT = "com.hubject-connector.evse.upsert.v1"
    EVSE_DELETE = "com.hubject-connector.evse.delete.v1"
    EVSE_FULL_LOAD = "com.hubject-connector.evse.full-load.v1"
    EVSE_STATUS = "com.hubject-connector.evse.status.v1"
    NOTIFICATION_START = "com.hubject-connector.notification.start.v1"
    NOTIFICATION_PROGRESS = "com.hubject-connector.notification.progress.v1"
    NOTIFICATION_END = "com.hubject-connector.notification.end.v1"
    NOTIFICATION_ERROR = "com.hubject-connector.notification.error.v1"
    CDR = "com.hubject-connector.cdr.v1"
    PRICING_PRODUCTS = "com.hubject-connector.pricing.products.v1"
    PRICING_EVSE = "com.hubject-connector.pricing.evse.v1"
    # Backend -> connector: requests, answered by the connector.
    AUTHORIZATION_START_REQUEST = "com.hubject-connector.authorization.start.request.v1"
    AUTHORIZATION_STOP_REQUEST = "com.hubject-connector.authorization.stop.request.v1"
    # Connector -> backend: the answers to those requests.
    AUTHORIZATION_START_REPLY = "com.hubject-connector.authorization.start.reply.v1"
    AUTHORIZATION_STOP_REPLY = "com.hubject-connector.authorization.stop.reply.v1"
    # Connector -> backend: commands, answered by the backend.
    REMOTE_START_COMMAND = "com.hubject-connector.remote.start.command.v1"
    REMOTE_STOP_COMMAND = "com.hubject-connector.remote.stop.command.v1"
    RESERVATION_START_COMMAND = "com.hubject-connector.reservation.start.command.v1"
    RESERVATION_STOP_COMMAND = "com.hubject-connector.reservation.stop.command.v1"
    # Backend -> connector: the answers to those commands.
    REMOTE_START_REPLY = "com.hubject-connector.remote.start.reply.v1"
    REMOTE_STOP_REPLY = "com.hubject-connector.remote.stop.reply.v1"
    RESERVATION_START_REPLY = "com.hubject-connector.reservation.start.reply.v1"
    RESERVATION_STOP_REPLY = "com.hubject-connector.reservation.stop.reply.v1"
    # Connector -> backend: what became of each message the backend sent.
    DELIVERY_RESULT = "com.hubject-connector.delivery.result.v1"


class Direction(StrEnum):
    """Who sends a message type."""

    TO_CONNECTOR = "to_connector"
    TO_BACKEND = "to_backend"


class Kind(StrEnum):
    """The role of a message type in its exchange."""

    #: Fire and forget; answered later by a delivery result.
    EVENT = "event"
    #: Backend asks the connector, which replies (authorization).
    REQUEST = "request"
    #: Connector asks the backend, which replies before the deadline.
    COMMAND = "command"
    #: The answer to a request or a command; correlationid is its id.
    REPLY = "reply"
    #: The outcome of an event.
    RESULT = "result"


class Outcome(StrEnum):
    """``outcome`` of a delivery result."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DEAD_LETTERED = "dead_lettered"
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """What the contract says about one message type."""

    type: MessageType
    title: str
    direction: Direction
    kind: Kind
    #: Suffix of the RabbitMQ queue its consumer reads ("{queue_prefix}.{queue}"); None for
    #: replies, which travel to the requester's reply address.
    queue: str | None
    #: The type that answers it (requests and commands).
    reply_type: MessageType | None = None

    @property
    def schema_file(self) -> str:
        """The name of its JSON Schema file in hubject_connector/bus/schemas/."""
        return self.type.removeprefix(TYPE_PREFIX) + ".json"


def _specs() -> dict[MessageType, MessageSpec]:
    t = MessageType
    to_c, to_b = Direction.TO_CONNECTOR, Direction.TO_BACKEND
    rows = [
        MessageSpec(t.EVSE_UPSERT, "EVSE upsert", to_c, Kind.EVENT, "evse"),
        MessageSpec(t.EVSE_DELETE, "EVSE delete", to_c, Kind.EVENT, "evse"),
        MessageSpec(t.EVSE_FULL_LOAD, "EVSE full load", to_c, Kind.EVENT, "evse"),
        MessageSpec(t.EVSE_STATUS, "EVSE status change", to_c, Kind.EVENT, "evse-status"),
        MessageSpec(t.AUTHORIZATION_START_REQUEST, "Authorize start request", to_c,
                    Kind.REQUEST, "authorization", t.AUTHORIZATION_START_REPLY),
        MessageSpec(t.AUTHORIZATION_STOP_REQUEST, "Authorize stop request", to_c,
                    Kind.REQUEST, "authorization", t.AUTHORIZATION_STOP_REPLY),
        MessageSpec(t.NOTIFICATION_START, "Charging notification: start", to_c, Kind.EVENT,
                    "notifications"),
        MessageSpec(t.NOTIFICATION_PROGRESS, "Charging notification: progress", to_c,
                    Kind.EVENT, "notifications"),
        MessageSpec(t.NOTIFICATION_END, "Charging notification: end", to_c, Kind.EVENT,
                    "notifications"),
        MessageSpec(t.NOTIFICATION_ERROR, "Charging notification: error", to_c, Kind.EVENT,
                    "notifications"),
        MessageSpec(t.CDR, "Charge detail record", to_c, Kind.EVENT, "cdr"),
        MessageSpec(t.PRICING_PRODUCTS, "Pricing products push", to_c, Kind.EVENT,
                    "pricing"),
        MessageSpec(t.PRICING_EVSE, "EVSE pricing push", to_c, Kind.EVENT, "pricing"),
        MessageSpec(t.AUTHORIZATION_START_REPLY, "Authorize start reply", to_b, Kind.REPLY,
                    None),
        MessageSpec(t.AUTHORIZATION_STOP_REPLY, "Authorize stop reply", to_b, Kind.REPLY,
                    None),
        MessageSpec(t.REMOTE_START_COMMAND, "Remote start command", to_b, Kind.COMMAND,
                    "backend.commands", t.REMOTE_START_REPLY),
        MessageSpec(t.REMOTE_STOP_COMMAND, "Remote stop command", to_b, Kind.COMMAND,
                    "backend.commands", t.REMOTE_STOP_REPLY),
        MessageSpec(t.RESERVATION_START_COMMAND, "Reservation start command", to_b,
                    Kind.COMMAND, "backend.commands", t.RESERVATION_START_REPLY),
        MessageSpec(t.RESERVATION_STOP_COMMAND, "Reservation stop command", to_b,
                    Kind.COMMAND, "backend.commands", t.RESERVATION_STOP_REPLY),
        MessageSpec(t.REMOTE_START_REPLY, "Remote start reply", to_c, Kind.REPLY, None),
        MessageSpec(t.REMOTE_STOP_REPLY, "Remote stop reply", to_c, Kind.REPLY, None),
        MessageSpec(t.RESERVATION_START_REPLY, "Reservation start reply", to_c, Kind.REPLY,
                    None),
        MessageSpec(t.RESERVATION_STOP_REPLY, "Reservation stop reply", to_c, Kind.REPLY,
                    None),
        MessageSpec(t.DELIVERY_RESULT, "Delivery result", to_b, Kind.RESULT,
                    "backend.results"),
    ]
    return {row.type: row for row in rows}


#: Every message type's spec, by type.
MESSAGE_SPECS: Final[Mapping[MessageType, MessageSpec]] = _specs()
_KNOWN_TYPES: Final[Mapping[str, MessageType]] = {str(t): t for t in MessageType}


# --- errors --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContractIssue:
    """One broken rule: ``pointer`` is a JSON pointer from the envelope's root."""

    pointer: str
    message: str

    def __str__(self) -> str:
        message = _shorten(self.message, _MAX_MESSAGE_CHARS)
        if not self.pointer:
            return message
        # A key may hold a newline or other control characters: show them escaped.
        shown = self.pointer if self.pointer.isprintable() else json.dumps(self.pointer)
        return f"{_shorten(shown, _MAX_POINTER_CHARS)}: {message}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ContractError(BusError):
    """A message breaks the bus contract. Permanent: sending it again cannot help.

    ``message_id`` and ``message_type`` are the envelope's ``id`` and ``type`` when they
    could be read, so that a delivery result or a dead letter can refer to the message.
    """

    transient = False

    def __init__(
        self,
        issues: Iterable[ContractIssue],
        *,
        message_id: str | None = None,
        message_type: str | None = None,
    ) -> None:
        self.issues: tuple[ContractIssue, ...] = tuple(issues)
        self.message_id = message_id
        self.message_type = message_type
        text = "; ".join(str(issue) for issue in self.issues[:MAX_ISSUES])
        super().__init__(text or "the message breaks the bus contract")


# --- the envelope --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One bus message: a CloudEvents 1.0 event whose data is a JSON object.

    ``data`` holds JSON values only (decimals as strings, times as strings with offset);
    treat it as read-only. ``extensions`` holds the other CloudEvents attributes
    (``dataschema``, ``traceparent``, other extensions), passed through untouched.
    """

    id: str
    source: str
    type: MessageType
    time: datetime
    data: dict[str, Any]
    subject: str | None = None
    #: Extension ``correlationid``: in a reply or delivery result, the id it answers.
    correlation_id: str | None = None
    #: Extension ``replyto``: where a reply goes on transports without their own property.
    reply_to: str | None = None
    #: Extension ``deadline``: in a command or request, when a reply stops being useful.
    deadline: datetime | None = None
    extensions: Mapping[str, str | int | bool] = field(default_factory=dict)

    @property
    def spec(self) -> MessageSpec:
        """What the contract says about this message's type."""
        return MESSAGE_SPECS[self.type]

    def to_dict(self) -> dict[str, Any]:
        """The envelope as a JSON object."""
        out: dict[str, Any] = {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": str(self.type),
            "time": _format_time(self.time),
            "datacontenttype": DATA_CONTENT_TYPE,
        }
        if self.subject is not None:
            out["subject"] = self.subject
        if self.correlation_id is not None:
            out["correlationid"] = self.correlation_id
        if self.reply_to is not None:
            out["replyto"] = self.reply_to
        if self.deadline is not None:
            out["deadline"] = _format_time(self.deadline)
        for name, value in self.extensions.items():
            out.setdefault(name, value)
        out["data"] = self.data
        return out

    def to_bytes(self) -> bytes:
        """The envelope as compact UTF-8 JSON, as it goes on the bus."""
        return json.dumps(
            self.to_dict(), ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")


def _format_time(value: datetime) -> str:
    # A naive datetime is written without offset, and validation then names the field.
    return value.isoformat()


# --- schemas and validators ----------------------------------------------------------------


@cache
def schema_documents() -> Mapping[str, Mapping[str, Any]]:
    """Every packaged schema file by file name (envelope.json, common.json, one per type)."""
    folder = resources.files(__package__ or "hubject_connector.bus").joinpath("schemas")
    documents: dict[str, Mapping[str, Any]] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            documents[entry.name] = json.loads(entry.read_text(encoding="utf-8"))
    return documents


def schema_for(message_type: MessageType) -> Mapping[str, Any]:
    """The JSON Schema of a whole message (envelope and data) of ``message_type``."""
    return schema_documents()[MESSAGE_SPECS[message_type].schema_file]


def _ecma_pattern(
    validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    # JSON Schema patterns are ECMA-262, where "$" matches only at the very end; Python's
    # "$" also matches before a final newline, so "DE*ABC*E1\n" would pass as an EvseID.
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"does not match {pattern!r}")


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _check_date_time(value: object) -> bool:
    # The schemas pair format "date-time" with a pattern that requires the offset; this
    # adds the calendar check (no 2024-02-30T25:00:00Z) the pattern cannot make.
    if not isinstance(value, str):
        return True
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.tzinfo is not None


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_check_date_time)
    return checker


_ContractValidator = extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _ecma_pattern}
)


def _without_dialect(document: Mapping[str, Any]) -> dict[str, Any]:
    # jsonschema picks the validator class anew wherever a "$schema" keyword appears, so a
    # $ref into another file would fall back to the stock class and lose the ECMA pattern
    # rule above. Every file is 2020-12; the validators get them without the keyword.
    return {key: value for key, value in document.items() if key != "$schema"}


@cache
def _registry() -> Registry[Any]:
    resources_ = [
        (str(doc["$id"]),
         Resource.from_contents(_without_dialect(doc), default_specification=DRAFT202012))
        for doc in schema_documents().values()
    ]
    registry: Registry[Any] = Registry().with_resources(resources_)
    return registry.crawl()


@cache
def _validators() -> Mapping[str, Validator]:
    """One compiled validator per schema file, built on first use and kept."""
    registry = _registry()
    checker = _format_checker()
    return {
        name: _ContractValidator(_without_dialect(doc), registry=registry,
                                 format_checker=checker)
        for name, doc in schema_documents().items()
        if name != "common.json"
    }


@cache
def _quick_checks() -> Mapping[str, Check | None]:
    """Per schema file, the schema compiled into a fast "valid?" (bus/schema_compiler.py).

    Speed only: a message it passes is one the validator accepts; whatever it does not
    pass goes to the validator, which alone words the issues.
    """
    registry = _registry()
    checker = _format_checker()
    return {
        name: compile_schema(_without_dialect(doc), str(doc["$id"]), registry,
                             pattern=_compiled, format_ok=checker.conforms)
        for name, doc in schema_documents().items()
        if name != "common.json"
    }


# --- turning validation errors into issues -------------------------------------------------

_RANK: Final = {"type": 0, "required": 1, "additionalProperties": 2, "const": 3, "enum": 3,
                "minLength": 3, "pattern": 4, "format": 5}
_TYPE_NAMES: Final = {"string": "a string", "object": "a JSON object", "array": "an array",
                      "integer": "an integer", "number": "a number", "boolean": "a boolean",
                      "null": "null"}


def _escape(part: str | int) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _pointer(path: Iterable[str | int]) -> str:
    return "".join("/" + _escape(part) for part in path)


def _hint(schema: Mapping[str, Any]) -> str:
    """ (title, e.g. "example")" for a schema that has a title."""
    title = schema.get("title")
    if not isinstance(title, str):
        return ""
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return f" ({title}, e.g. {json.dumps(examples[0], ensure_ascii=False)})"
    return f" ({title})"


def _describe(error: ValidationError) -> Iterator[tuple[str, str, int]]:
    """(pointer, message, rank) for one validation error; lower ranks win per pointer."""
    where = _pointer(error.absolute_path)
    keyword = str(error.validator)
    # The keyword's value in the schema (jsonschema types it "Any | Unset").
    value: Any = error.validator_value
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    instance = error.instance
    rank = _RANK.get(keyword, 6)
    description = schema.get("description")
    if keyword == "required" and isinstance(instance, Mapping):
        for name in value:
            if name not in instance:
                yield f"{where}/{_escape(name)}", "is required", rank
    elif keyword == "additionalProperties" and isinstance(instance, Mapping):
        known = schema.get("properties", {})
        patterns = [_compiled(p) for p in schema.get("patternProperties", {})]
        for name in instance:
            if name not in known and not any(p.search(name) for p in patterns):
                yield f"{where}/{_escape(name)}", "is not allowed here", rank
    elif "propertyNames" in error.relative_schema_path and isinstance(instance, str):
        # A bad key is reported on the key itself, not on the object holding it.
        yield (f"{where}/{_escape(instance)}",
               f"is not allowed here: not a valid {schema.get('title', 'property name')} "
               "(lower-case letters and digits, at most 20)", _RANK["additionalProperties"])
    elif keyword == "type":
        expected = [value] if isinstance(value, str) else list(value)
        names = " or ".join(_TYPE_NAMES.get(t, t) for t in expected)
        yield where, f"must be {names}{_hint(schema)}", rank
    elif keyword == "pattern":
        title = schema.get("title")
        if isinstance(title, str):
            examples = schema.get("examples") or []
            example = f", e.g. {json.dumps(examples[0], ensure_ascii=False)}" if examples else ""
            yield where, f"does not match the {title} pattern{example}", rank
        else:
            yield where, f"does not match the pattern {value}", rank
    elif keyword == "format":
        yield where, f"is not a valid {schema.get('title', value)}", rank
    elif keyword == "enum":
        allowed = ", ".join(json.dumps(v, ensure_ascii=False) for v in value)
        yield where, f"must be one of: {allowed}", rank
    elif keyword == "const":
        why = f" ({description})" if isinstance(description, str) else ""
        yield where, f"must be {json.dumps(value, ensure_ascii=False)}{why}", rank
    elif keyword == "minLength":
        yield where, ("must not be empty" if value == 1
                      else f"must be at least {value} characters long"), rank
    elif keyword == "maxLength":
        yield where, f"must be at most {value} characters long", rank
    elif keyword == "minItems":
        yield where, f"must have at least {value} item{'s' if value != 1 else ''}", rank
    elif keyword == "maxItems":
        yield where, f"must have at most {value} item{'s' if value != 1 else ''}", rank
    elif keyword == "minimum":
        yield where, f"must be at least {value}", rank
    elif keyword == "maximum":
        yield where, f"must be at most {value}", rank
    elif isinstance(description, str):
        # Convention of the schemas: a description next to a rule keyword (oneOf, anyOf,
        # not, const) words that rule for the reader.
        yield where, description, rank
    elif keyword in ("oneOf", "anyOf") and all(
        isinstance(sub, Mapping) and set(sub) == {"required"} for sub in value
    ):
        names = ", ".join(name for sub in value for name in sub["required"])
        quantity = "exactly" if keyword == "oneOf" else "at least"
        yield where, f"needs {quantity} one of: {names}", rank
    else:
        yield where, error.message, rank


def _issues(errors: Iterable[ValidationError]) -> list[ContractIssue]:
    best: dict[str, tuple[int, str]] = {}
    for error in errors:
        for pointer, message, rank in _describe(error):
            if pointer not in best or rank < best[pointer][0]:
                best[pointer] = (rank, message)
    return [ContractIssue(p, m) for p, (_, m) in sorted(best.items())][:MAX_ISSUES]


def _raise_if_invalid(
    schema_file: str, document: Mapping[str, Any], message_id: str | None,
    message_type: str | None,
) -> None:
    quick = _quick_checks()[schema_file]
    try:
        if quick is not None and quick(document):
            return
    except Exception:  # noqa: S110 - the validator below decides (and words the issues)
        pass
    issues = _issues(_validators()[schema_file].iter_errors(document))
    if issues:
        raise ContractError(issues, message_id=message_id, message_type=message_type)


# --- reading -------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_envelope(raw: bytes | bytearray | memoryview | str) -> Envelope:
    """Read one message from the bus, checking the envelope and its data.

    Raises ``ContractError`` for text that is not UTF-8 JSON, JSON that is not an object,
    a missing or malformed envelope attribute, an unknown type, or data that breaks its
    type's schema; each issue names the field by JSON pointer and says the rule.
    """
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ContractError(
                [ContractIssue("", f"is not UTF-8 text (byte {exc.start}: {exc.reason})")]
            ) from exc
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        # json recurses once per level: a body nested thousands deep is refused, not a crash.
        raise ContractError([ContractIssue("", "is nested too deeply to be a message")]) from None
    except json.JSONDecodeError as exc:
        raise ContractError(
            [ContractIssue("", f"is not valid JSON: {exc.msg} at line {exc.lineno} "
                               f"column {exc.colno}")]
        ) from exc
    except ValueError as exc:
        raise ContractError([ContractIssue("", f"is not valid JSON: {exc}")]) from exc
    if _SURROGATE_ESCAPE.search(text):
        _refuse_unpaired_surrogates(document)
    try:
        return envelope_from_dict(document)
    except RecursionError:
        raise ContractError([ContractIssue("", "is nested too deeply to be a message")]) from None


def _refuse_unpaired_surrogates(document: Any) -> None:
    """Refuse a string (or key) holding an unpaired UTF-16 surrogate escape ("\\ud800").

    JSON lets one through, but it is no Unicode character: it cannot be written as UTF-8,
    so the message could not be stored, logged or passed on.
    """
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        pointer, value = stack.pop()
        items: Iterable[tuple[str | int, Any]]
        if isinstance(value, dict):
            items = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            if isinstance(value, str) and not _is_utf8(value):
                raise ContractError(
                    [ContractIssue(pointer, "holds an unpaired UTF-16 surrogate (\\ud800-"
                                            "\\udfff), which is not a Unicode character")]
                )
            continue
        for key, item in items:
            child = f"{pointer}/{_escape(key)}"
            if isinstance(key, str) and not _is_utf8(key):
                raise ContractError(
                    [ContractIssue(pointer, "has a member name holding an unpaired UTF-16 "
                                            "surrogate, which is not a Unicode character")]
                )
            stack.append((child, item))


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def envelope_from_dict(document: Any) -> Envelope:
    """Like ``parse_envelope``, for a message already decoded from JSON."""
    if not isinstance(document, Mapping):
        kind = type(document).__name__
        raise ContractError(
            [ContractIssue("", f"must be a JSON object (a CloudEvents envelope), not {kind}")]
        )
    raw_id, raw_type = document.get("id"), document.get("type")
    message_id = raw_id if isinstance(raw_id, str) else None
    type_text = raw_type if isinstance(raw_type, str) else None
    message_type = _KNOWN_TYPES.get(type_text or "")
    if message_type is None:
        # Only the envelope can be checked; an envelope without fault has an unknown type.
        _raise_if_invalid("envelope.json", document, message_id, type_text)
        raise ContractError(
            [ContractIssue("/type", f"is not a known message type: {type_text!r} "
                                    "(see docs/contract.md for the list)")],
            message_id=message_id, message_type=type_text,
        )
    # A message schema includes the envelope's: one pass checks both.
    _raise_if_invalid(MESSAGE_SPECS[message_type].schema_file, document, message_id,
                      type_text)
    return _build(document, message_type)


def _build(document: Mapping[str, Any], message_type: MessageType) -> Envelope:
    deadline = document.get("deadline")
    return Envelope(
        id=document["id"],
        source=document["source"],
        type=message_type,
        time=datetime.fromisoformat(document["time"]),
        data=dict(document["data"]),
        subject=document.get("subject"),
        correlation_id=document.get("correlationid"),
        reply_to=document.get("replyto"),
        deadline=datetime.fromisoformat(deadline) if deadline is not None else None,
        extensions={k: v for k, v in document.items() if k not in _CORE_ATTRIBUTES},
    )


# --- writing -------------------------------------------------------------------------------


def to_json_value(value: Any) -> Any:
    """``value`` with Decimals, datetimes and enums turned into their contract strings.

    Decimals are written in plain notation (``Decimal("1E+1")`` → ``"10"``); datetimes with
    their offset (a naive one fails validation); enums as their value.
    """
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _message_type(value: MessageType | str) -> MessageType:
    try:
        return MessageType(value)
    except ValueError:
        raise ContractError(
            [ContractIssue("/type", f"is not a known message type: {value!r}")]
        ) from None


def make_envelope(
    message_type: MessageType | str,
    data: Mapping[str, Any],
    *,
    source: str = DEFAULT_SOURCE,
    subject: str | None = None,
    correlation_id: str | None = None,
    reply_to: str | None = None,
    deadline: datetime | None = None,
    time: datetime | None = None,
    message_id: str | None = None,
    extensions: Mapping[str, str | int | bool] | None = None,
) -> Envelope:
    """A new message of ``message_type``, checked against the contract.

    ``data`` may hold Decimals, datetimes and enums (see ``to_json_value``). The id is a
    new UUID and the time now in UTC unless given. Raises ``ContractError`` if the result
    breaks the contract.
    """
    kind = _message_type(message_type)
    envelope = Envelope(
        id=message_id if message_id is not None else str(uuid.uuid4()),
        source=source,
        type=kind,
        time=time if time is not None else datetime.now(UTC),
        data=to_json_value(data),
        subject=subject,
        correlation_id=correlation_id,
        reply_to=reply_to,
        deadline=deadline,
        extensions=dict(extensions or {}),
    )
    validate_envelope(envelope)
    return envelope


def validate_envelope(envelope: Envelope) -> None:
    """Check an envelope built by hand (or changed with ``dataclasses.replace``)."""
    _raise_if_invalid(envelope.spec.schema_file, envelope.to_dict(), envelope.id,
                      str(envelope.type))


def make_reply(
    request: Envelope,
    data: Mapping[str, Any],
    *,
    source: str = DEFAULT_SOURCE,
    message_type: MessageType | str | None = None,
    time: datetime | None = None,
) -> Envelope:
    """The reply to a request or command: its reply type, correlationid = request's id.

    ``message_type`` defaults to the request type's reply type; the subject is carried over.
    """
    reply_type = message_type if message_type is not None else request.spec.reply_type
    if reply_type is None:
        raise ValueError(f"{request.type} expects no reply")
    return make_envelope(
        reply_type, data, source=source, subject=request.subject,
        correlation_id=request.id, time=time,
    )


def make_delivery_result(
    message_id: str,
    outcome: Outcome | str,
    *,
    message_type: str | None = None,
    subject: str | None = None,
    status_code: str | None = None,
    status_description: str | None = None,
    additional_info: str | None = None,
    reason: str | None = None,
    session_id: str | None = None,
    attempts: int | None = None,
    source: str = DEFAULT_SOURCE,
    time: datetime | None = None,
) -> Envelope:
    """A delivery result for the backend's message ``message_id``.

    A rejected result needs ``status_code`` and ``reason``; dead_lettered and dropped need
    ``reason``. ``message_type`` and ``subject`` are the original message's, when known.
    """
    candidates: dict[str, Any] = {
        "message_id": message_id,
        "message_type": message_type,
        "outcome": outcome,
        "status_code": status_code,
        "status_description": status_description,
        "additional_info": additional_info,
        "reason": reason,
        "session_id": session_id,
        "attempts": attempts,
    }
    data = {k: v for k, v in candidates.items() if v is not None}
    return make_envelope(
        MessageType.DELIVERY_RESULT, data, source=source, subject=subject,
        correlation_id=message_id, time=time,
    )
