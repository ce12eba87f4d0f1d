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

Free text (event messages, exception texts, body excerpts, reprs) is cleaned by
``mask_text``, which error messages that leave the process (dead-letter reasons, terminal
output) use too:

* the password of ``user:password@`` in URLs, and the value after a secret's name
  (``"PIN":"1234"``, ``pin='1234'``, ``api_key=...``, ``Authorization: Bearer ...``,
  ``Cookie: ...``, ``"HashedPIN":{...}``) become ``<redacted>``;
* the value after an identifier's name (``"UID":"04a2b3c4"``, ``evco_id='...'``) is masked;
* EvcoIDs and UIDs standing alone (between delimiters, not inside longer words) are
  masked, in any case, UIDs also written as colon-separated bytes (``04:A2:B3:C4``).

Standing alone, a token is taken for an EvcoID or a UID only when it has the shape and a
digit, and for a UID only when it also has a hex letter: numbers ("size 67108864", dates
such as 20240101) are left alone, since a card UID written in decimal digits only cannot be
told from them without its key. A token that is a valid EvseID is left alone (EvseIDs are
not personal and are what operators search for).
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
    {"pin", "hashedpin", "legacyhashdata", "salt", "password", "passwd", "pwd", "secret",
     "token", "authorization", "proxyauthorization", "privatekey", "passphrase", "apikey",
     "xapikey", "accesstoken", "refreshtoken", "idtoken", "authtoken", "bearertoken",
     "clientsecret", "cookie", "cookies", "setcookie", "credential", "credentials"}
)
# A key ending in one of these names a secret too ("webhook_password", "x-auth-token").
_SECRET_SUFFIXES: Final = ("password", "passwd", "secret", "token", "apikey", "credentials")
# Keys whose values are EvseIDs: never masked, even where an EvseID looks like an EvcoID.
_EVSE_KEYS: Final = frozenset({"evseid", "evseids"})

# Letters, digits, "*" and "-" continue an ID; anything else delimits it.
_DELIMITED: Final = r"(?<![A-Za-z0-9*\-])(?:{})(?![A-Za-z0-9*\-])"
# The EvcoID shapes of the spec (ISO 15118 and DIN 91286), in any case: logs carry what
# backends send, and a lower-case check letter is still somebody's contract.
_EVCO_SHAPE: Final = (
    r"[a-z]{2}[*-]?[a-z0-9]{3}[*-]?(?:c[a-z0-9]{8}|[a-z0-9]{6})[*-]?[a-z0-9]"
)
_UID_SHAPE: Final = r"[0-9a-f]{20}|[0-9a-f]{14}|[0-9a-f]{8}"
_IDENTIFIER_IN_TEXT: Final = re.compile(
    _DELIMITED.format(f"(?P<evco>{_EVCO_SHAPE})|(?P<uid>{_UID_SHAPE})"), re.IGNORECASE
)
# A UID written as bytes with colons: 4, 7 or 10 of them, not part of a longer chain
# (a certificate fingerprint, a MAC address).
_UID_BYTES: Final = re.compile(
    r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){3}(?:(?::[0-9A-Fa-f]{2}){3}){0,2}"
    r"(?![0-9A-Fa-f:])"
)
_EVCO_ID_ANY_CASE: Final = re.compile(patterns.EVCO_ID, re.IGNORECASE | re.ASCII)
_UID_ANY_CASE: Final = re.compile(patterns.UID, re.IGNORECASE | re.ASCII)

# A name that announces a secret or an identifier, written as a key in JSON, a repr, a
# query string or a header: optionally quoted, then ":" or "=".
_HIDDEN_NAME: Final = (
    r"(?:[a-z0-9]+[_-])*(?:hashed_?pin|pin|legacy_?hash_?data|salt|password|passwd|pwd"
    r"|passphrase|secret|client_?secret|(?:access|refresh|id|auth|bearer)?_?token"
    r"|api_?key|x-api-key|(?:proxy-)?authorization|(?:set-)?cookies?|credentials?"
    r"|private_?key)"
)
_ID_NAME: Final = (
    r"(?:evco_?id|evco|contract_?id|emaid|uid|card_?uid|rfid_?uid|printed_?number)"
)
# Not after "/" or ".": "/Identification/.../PIN: is too long" is a JSON pointer in an
# error message, not a PIN. The quotes may be escaped (JSON inside a JSON string).
_KEY: Final = (
    r"(?<![A-Za-z0-9_/.-])(?P<q>\\?[\"']|)(?P<name>{})(?P=q)(?P<sep>\s*[:=]\s*)"
)
_QUOTED: Final = (
    r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
    r"|\\\"(?:(?!\\\").)*\\\""  # \"...\" inside a JSON string
)
_SECRET_VALUE: Final = re.compile(
    _KEY.format(_HIDDEN_NAME)
    + r"(?P<value>" + _QUOTED
    + r"|\{(?:[^{}]|\{[^{}]*\})*\}"  # "HashedPIN":{...}, one level of nesting inside
    + r"|(?:bearer|basic|digest|token)\s+[^\s,;\"']+"  # Authorization: Bearer ...
    + r"|[^\s,;&\"'}\])]+)",
    re.IGNORECASE,
)
# "Cookie: a=1; b=2" in a header line: the whole rest of the line.
_COOKIE_LINE: Final = re.compile(
    r"(?<![A-Za-z0-9_-])(?P<name>(?:set-)?cookie)(?P<sep>:[ \t]*)(?P<value>[^\r\n\"']+)",
    re.IGNORECASE,
)
_BEARER: Final = re.compile(r"(?<![A-Za-z0-9])(?P<scheme>bearer\s+)[A-Za-z0-9\-._~+/]+=*",
                            re.IGNORECASE)
_ID_VALUE: Final = re.compile(
    _KEY.format(_ID_NAME) + r"(?P<value>" + _QUOTED + r"|[A-Za-z0-9*:\-]+)", re.IGNORECASE
)
# "scheme://user:password@host": the password.
_URL_PASSWORD: Final = re.compile(
    r"(?P<head>[a-z][a-z0-9+.\-]*://[^\s/@:\"']*:)(?P<password>[^\s@/\"']*)@", re.IGNORECASE
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
    if _EVCO_ID_ANY_CASE.fullmatch(value):
        keep = 5
    elif _UID_ANY_CASE.fullmatch(value):
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


def _quote_of(value: str) -> str:
    """The quote around a matched value ('"', "'", '\\"' or none)."""
    for quote in ('\\"', '"', "'"):
        if len(value) >= 2 * len(quote) and value.startswith(quote) and value.endswith(quote):
            return quote
    return ""


def _redact_value(match: re.Match[str]) -> str:
    if match.group("value") in ("None", "null", '""', "''"):
        return match.group(0)  # nothing given: no secret, and worth seeing
    quote = _quote_of(match.group("value"))
    return f"{match.group(0)[: match.start('value') - match.start(0)]}{quote}{REDACTED}{quote}"


def _mask_id_value(match: re.Match[str]) -> str:
    value = match.group("value")
    head = match.group(0)[: match.start("value") - match.start(0)]
    quote = _quote_of(value)
    inner = value[len(quote): len(value) - len(quote)]
    if MASK_CHAR in inner or inner == REDACTED:
        return match.group(0)  # masked already
    return f"{head}{quote}{mask_identifier(inner)}{quote}"


def _mask_uid_bytes(match: re.Match[str]) -> str:
    # "04:A2:B3:C4" keeps its first byte, as a UID written without colons does.
    first, *rest = match.group(0).split(":")
    return ":".join([first, *("**" for _ in rest)])


def _mask_free_identifier(match: re.Match[str]) -> str:
    found = match.group(0)
    if not any(c.isdigit() for c in found):
        return found  # a word, not an ID
    if match.group("evco") is not None:
        if patterns.matches("EvseID", found):
            return found
    elif found.isdigit():
        return found  # a number: a decimal-only UID cannot be told from one (docstring)
    return mask_identifier(found)


def mask_text(text: str) -> str:
    """Free text with secrets redacted and every EvcoID and card UID masked.

    What is found and how: see the module docstring. EvseIDs are left alone. Applying it
    twice changes nothing more.
    """
    if "PRIVATE KEY-----" in text:
        text = _PRIVATE_KEY.sub(PRIVATE_KEY_REDACTED, text)
    text = _URL_PASSWORD.sub(rf"\g<head>{REDACTED}@", text)
    text = _COOKIE_LINE.sub(rf"\g<name>\g<sep>{REDACTED}", text)
    text = _SECRET_VALUE.sub(_redact_value, text)
    text = _BEARER.sub(rf"\g<scheme>{REDACTED}", text)
    text = _ID_VALUE.sub(_mask_id_value, text)
    text = _UID_BYTES.sub(_mask_uid_bytes, text)
    return _IDENTIFIER_IN_TEXT.sub(_mask_free_identifier, text)


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
    if normal in _SECRET_KEYS or normal.endswith(_SECRET_SUFFIXES):
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
        return structlog.dev.ConsoleRenderer(colors=_is_terminal(stream))
    return structlog.processors.JSONRenderer(default=repr)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def configure_logging(
    format: LogFormat | None = "json",
    level: LogLevel | str = "info",
    *,
    stream: TextIO | None = None,
) -> None:
    """Send every log line (structlog and the standard library) to ``stream`` (stderr).

    ``format`` is "json" (one JSON object per line, the default) or "console"; ``None``
    chooses "console" when ``stream`` is a terminal (a person reads it) and "json"
    otherwise (a collector reads it). Lines below ``level`` are dropped. Calling it
    again replaces the previous setup.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    if format not in ("json", "console", None):
        raise ValueError(f"unknown log format {format!r}")
    stream = sys.stderr if stream is None else stream
    if format is None:
        format = "console" if _is_terminal(stream) else "json"

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
