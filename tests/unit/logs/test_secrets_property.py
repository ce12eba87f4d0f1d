"""Property: whatever a log event carries, no secret it holds reaches the output.

Events are built from random payloads (nested dicts, lists, free text, exceptions) into
which known secrets are planted the ways they arrive in practice: under a secret's key, as
a JSON or repr fragment in free text, in a URL, as a bare card UID or contract ID.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubject_connector.logs import LogFormat, configure_logging

_HEX = "0123456789ABCDEF"
_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"

# Secrets long and distinctive enough not to appear by chance in the rest of the output.
pins = st.text("0123456789", min_size=6, max_size=8).map(lambda s: "9" + s)
passwords = st.text(_ALNUM.lower(), min_size=10, max_size=16).map(lambda s: "pw" + s)
uids = st.sampled_from([6, 12, 18]).flatmap(
    lambda n: st.text(_HEX, min_size=n, max_size=n).map(lambda s: "0A" + s)
)
evco_ids = st.tuples(
    st.sampled_from(["DE", "AT", "NL"]), st.text(_ALNUM, min_size=3, max_size=3),
    st.text("0123456789", min_size=8, max_size=8), st.sampled_from(list("0123456789XABC")),
).map(lambda p: f"{p[0]}-{p[1]}-C{p[2]}-{p[3]}")

_SECRET_KEYS = ["PIN", "pin", "password", "api_key", "access_token", "client_secret",
                "cookie", "credentials", "Authorization", "webhook_password"]
_ID_KEYS = ["UID", "uid", "EvcoID", "evco_id", "card_uid"]


@st.composite
def planted(draw: st.DrawFn) -> tuple[Any, list[str], list[str]]:
    """A value with one secret planted in it; the secret whole, and the parts of an
    identifier that masking must hide (all of it beyond the kept prefix)."""
    kind = draw(st.sampled_from(["secret-key", "id-key", "json-text", "repr-text", "url",
                                 "bare-uid", "bare-evco", "colon-uid", "header"]))
    pin, password, uid, evco = draw(pins), draw(passwords), draw(uids), draw(evco_ids)
    hidden_uid = [uid[2:]]
    hidden_evco = [evco[7:].replace("-", "")[:8]]
    if kind == "secret-key":
        return {draw(st.sampled_from(_SECRET_KEYS)): password}, [password], []
    if kind == "id-key":
        key = draw(st.sampled_from(_ID_KEYS))
        value, parts = (uid, hidden_uid) if "uid" in key.lower() else (evco, hidden_evco)
        return {key: value}, [value], parts
    if kind == "json-text":
        body = json.dumps({"QRCodeIdentification": {"EvcoID": evco, "PIN": pin}})
        return f"answer body: {body}", [pin, evco], hidden_evco
    if kind == "repr-text":
        return f"QRCodeIdentification(evco_id='{evco}', pin='{pin}')", [pin, evco], hidden_evco
    if kind == "url":
        return f"POST https://cpo:{password}@backend.example/hook failed", [password], []
    if kind == "bare-uid":
        return f"card {uid.lower()} refused", [uid.lower()], [uid[2:].lower()]
    if kind == "bare-evco":
        return f"contract {evco} unknown", [evco], hidden_evco
    if kind == "colon-uid":
        colon = ":".join(uid[i:i + 2] for i in range(0, 8, 2))
        return f"reader saw {colon}", [colon], [colon[3:]]
    return f"sent with Authorization: Bearer {password} and Cookie: sid={pin}", \
        [password, pin], []


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000),
                         st.text(st.characters(codec="ascii", exclude_categories=["Cc"]),
                                 max_size=12))


@st.composite
def events(draw: st.DrawFn) -> tuple[str, dict[str, Any], list[str]]:
    """An event message and its key/values, with secrets planted at random depths."""
    hidden: list[str] = []
    plants = draw(st.lists(planted(), min_size=1, max_size=4))
    fields: dict[str, Any] = {}
    message = "event"
    for index, (value, secrets, parts) in enumerate(plants):
        hidden.extend(secrets)
        hidden.extend(parts)
        where = draw(st.sampled_from(["message", "field", "nested", "list", "exception"]))
        if where == "message" and isinstance(value, str):
            message = f"{message}; {value}"
        elif where == "nested":
            fields[f"context{index}"] = {"data": {"inner": value},
                                         "noise": draw(json_scalars)}
        elif where == "list":
            fields[f"items{index}"] = [draw(json_scalars), value]
        elif where == "exception":
            fields[f"error{index}"] = RuntimeError(f"failed: {value}")
        else:
            fields[f"value{index}"] = value
    for name, noise in draw(st.dictionaries(st.sampled_from(["a", "b", "size", "note"]),
                                            json_scalars, max_size=3)).items():
        fields.setdefault(name, noise)
    return message, fields, hidden


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.usefixtures("restore_logging")
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=events(), format=st.sampled_from(["json", "console"]),
       via=st.sampled_from(["structlog", "stdlib", "exception"]))
def test_no_secret_reaches_any_output_format(
    event: tuple[str, dict[str, Any], list[str]], format: LogFormat, via: str
) -> None:
    message, fields, hidden = event
    out = io.StringIO()
    configure_logging(format, "debug", stream=out)
    if via == "structlog":
        structlog.get_logger("property").warning(message, **fields)
    elif via == "stdlib":
        logging.getLogger("property").warning("%s %r", message, fields)
    else:
        try:
            raise ValueError(f"{message} {fields!r}")
        except ValueError:
            structlog.get_logger("property").exception("handling failed")
    text = out.getvalue()
    assert text.strip(), "nothing was logged"
    for secret in hidden:
        assert secret not in text, f"{secret!r} leaked in {format}: {text}"
