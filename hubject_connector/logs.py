"""Structured logging: JSON lines for machines, console lines for people, nothing private.

Every log line, from structlog or from the standard library (aiohttp, aio_pika), goes
through one chain: context variables (SessionID, EvseID, operation) are merged in, then
two processors clean it before it is rendered:

* ``redact_private_keys`` replaces anything that looks like a PEM private key.
* ``mask_identifiers`` masks contract IDs (EvcoID) and card UIDs, in the event text, in
  every value and key, nested dicts and lists included. They are found by key (``EvcoID``,
  ``evco_id``, ``UID``, ``uid``, ...) and by the OICP patterns inside free text.

Masking keeps a short prefix for correlation and replaces every other letter or digit by
``*``, keeping separators: ``DE-8EO-CAB123456-7`` becomes ``DE-8EO-*********-*`` (the
prefix is the provider's ID, which is not personal), and the UID ``04A2B3C4D5E6F7``
becomes ``04************`` (the first byte names the chip maker). PINs, passwords and
tokens found by key are replaced by ``<redacted>`` entirely.

Free text is searched with the EvcoID and UID patterns of ``oicp.patterns`` between
delimiters (not inside longer words). Two choices follow from that: a token that is a valid
EvseID is left alone (EvseIDs are not personal and are what operators search for), and
any 8, 14 or 20 upper-case hex digits standing alone are treated as a UID. The patterns
are loose (a 12-character word ending in a digit can be an EvcoID), so masking errs on the
side of hiding too much rather than too little.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Final, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from hubject_connector.oicp import patterns

LogFormat = Literal["json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]

MASK_CHAR: Final = "*"
REDACTED: Final = "<redacted>"
PRIVATE_KEY_REDACTED: Final = "<private key redacted>"

# Keys whose values are contract IDs or card numbers, compared without "_", "-" and case.
_IDENTIFIER_KEYS: Final = frozenset(
    {"evcoid", "evco", "contractid", "emaid", "uid", "carduid", "rfiduid", "printednumber",
     "evcoids", "uids"}
)
# Keys whose values are secrets: nothing of them is kept.
_SECRET_KEYS: Final = frozenset(
    {"pin", "hashedpin", "password", "passwd", "secret", "token", "authorization",
     "privatekey", "passphrase"}
)
# Keys whose values are EvseIDs: never masked, even where an EvseID looks like an EvcoID.
_EVSE_KEYS: Final = frozenset({"evseid", "evseids"})

# Letters, digits, "*" and "-" continue an ID; anything else delimits it.
_DELIMITED: Final = r"(?<![A-Za-z0-9*\-])(?:{})(?![A-Za-z0-9*\-])"
_IDENTIFIER_IN_TEXT: Final = re.compile(
    _DELIMITED.format(f"(?P<evco>{patterns.EVCO_ID})|(?P<uid>{patterns.UID})")
)
_PRIVATE_KEY: Final = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY-----"
    r"(?:.*?-----END (?P=kind)PRIVATE KEY-----|.*\Z)",
    re.DOTALL,
)
_PRIVATE_KEY_BYTES: Final = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")

# Handlers this module installed on the root logger, replaced on reconfiguration.
_HANDLER_MARK: Final = "_hubject_connector_handler"


def _normalise_key(key: object) -> str:
    return str(key).replace("_", "").replace("-", "").replace(" ", "").lower()


def mask_identifier(value: str) -> str:
    """``value`` with all but a short prefix of its letters and digits replaced by ``*``.

    An EvcoID keeps its first 5 letters and digits (country and provider), a card UID its
    first 2 hex digits, anything else at most a quarter of its letters and digits (at most
    5). Separators stay, so the shape remains recognisable: ``DE-8EO-CAB123456-7`` becomes
    ``DE-8EO-*********-*``.
    """
    if patterns.matches("EvcoID", value):
        keep = 5
    elif patterns.matches("UID", value):
        keep = 2
    else:
        keep = min(5, sum(c.isalnum() for c in value) // 4)
    out: list[str] = []
    seen = 0
    for char in value:
        if char.isalnum():
            seen += 1
            out.append(char if seen <= keep else MASK_CHAR)
        else:
            out.append(char)
    return "".join(out)


def mask_text(text: str) -> str:
    """Free text with every EvcoID and card UID in it masked (EvseIDs left alone)."""

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        if match.group("evco") is not None and patterns.matches("EvseID", found):
            return found
        return mask_identifier(found)

    return _IDENTIFIER_IN_TEXT.sub(replace, text)


def _mask_value(value: Any, key_kind: str | None) -> Any:
    """Mask one value; ``key_kind`` says what its key announces ("id", "secret", "evse")."""
    if isinstance(value, str):
        if key_kind == "secret":
            return REDACTED
        if key_kind == "id":
            return mask_text(mask_identifier(value))
        if key_kind == "evse":
            return value
        return mask_text(value)
    if isinstance(value, bool | int | float) or value is None:
        if key_kind == "secret" and value is not None:
            return REDACTED
        if key_kind == "id" and not isinstance(value, bool) and value is not None:
            return mask_identifier(str(value))
        return value
    if isinstance(value, Mapping):
        return {_mask_key(k): _mask_value(v, _kind_of(k) or key_kind) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask_value(v, key_kind) for v in value]
    if isinstance(value, bytes):
        return _mask_value(value.decode("utf-8", "replace"), key_kind)
    # Anything else would be rendered through repr() (dataclasses, exceptions, ...):
    # render it here so what it contains is masked too.
    return _mask_value(repr(value), key_kind)


def _mask_key(key: str) -> str:
    return mask_text(key) if isinstance(key, str) else key


def _kind_of(key: object) -> str | None:
    normal = _normalise_key(key)
    if normal in _IDENTIFIER_KEYS:
        return "id"
    if normal in _SECRET_KEYS:
        return "secret"
    if normal in _EVSE_KEYS:
        return "evse"
    return None


def mask_identifiers(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor: mask EvcoIDs and UIDs in the event text and in every key and value."""
    return {_mask_key(k): _mask_value(v, _kind_of(k)) for k, v in event_dict.items()}


def _redact_keys(value: Any) -> Any:
    if isinstance(value, str):
        if "PRIVATE KEY-----" in value:
            return _PRIVATE_KEY.sub(PRIVATE_KEY_REDACTED, value)
        return value
    if isinstance(value, bytes):
        return PRIVATE_KEY_REDACTED if _PRIVATE_KEY_BYTES.search(value) else value
    if isinstance(value, Mapping):
        return {k: _redact_keys(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_keys(v) for v in value]
    return value


def redact_private_keys(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    """Processor: replace PEM private keys (any kind, even truncated) anywhere in the event."""
    return {k: _redact_keys(v) for k, v in event_dict.items()}


@contextmanager
def log_context(
    *,
    session_id: str | None = None,
    evse_id: str | None = None,
    operation: str | None = None,
    **extra: Any,
) -> Iterator[None]:
    """Bind values to every log line written inside the ``with`` block (this task only).

    ``None`` values are not bound. Uses structlog's contextvars, so concurrent asyncio
    tasks keep their own context.
    """
    values = {"session_id": session_id, "evse_id": evse_id, "operation": operation, **extra}
    with structlog.contextvars.bound_contextvars(
        **{k: v for k, v in values.items() if v is not None}
    ):
        yield


def bind_session(
    session_id: str | None, *, evse_id: str | None = None, operation: str | None = None
) -> AbstractContextManager[None]:
    """Context manager binding a charging session's SessionID (and EvseID, operation)."""
    return log_context(session_id=session_id, evse_id=evse_id, operation=operation)


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Exceptions become text here, so the processors below clean tracebacks too.
        structlog.processors.format_exc_info,
    ]


def _renderer(format: LogFormat, stream: TextIO) -> Processor:
    if format == "console":
        isatty = getattr(stream, "isatty", None)
        colors = bool(isatty and isatty())
        return structlog.dev.ConsoleRenderer(colors=colors)
    return structlog.processors.JSONRenderer(default=repr)


def configure_logging(
    format: LogFormat = "json",
    level: LogLevel | str = "info",
    *,
    stream: TextIO | None = None,
) -> None:
    """Send every log line (structlog and the standard library) to ``stream`` (stderr).

    ``format`` is "json" (one JSON object per line, the default) or "console". Lines
    below ``level`` are dropped. Calling it again replaces the previous setup.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    if format not in ("json", "console"):
        raise ValueError(f"unknown log format {format!r}")
    stream = sys.stderr if stream is None else stream

    formatter = structlog.stdlib.ProcessorFormatter(
        # Runs on records from the standard library only.
        foreign_pre_chain=_shared_processors(),
        # Runs on every record, last: the cleaning must see the final event dict (in which
        # both chains have already turned exceptions into text).
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact_private_keys,
            mask_identifiers,
            _renderer(format, stream),
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)

    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        context_class=dict,
        # Module-level loggers (structlog.get_logger() at import) must follow a later
        # configure_logging call, so bound loggers are not frozen on first use.
        cache_logger_on_first_use=False,
    )
