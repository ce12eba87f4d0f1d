"""Models keep card UIDs, contract IDs, PINs and hashes out of their repr, so that a debug
log line, a traceback or an error report that prints a model carries none of them."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import structlog

from hubject_connector.logs import configure_logging
from hubject_connector.oicp import codec, messages
from hubject_connector.oicp.authorization import AuthorizeStart
from hubject_connector.oicp.common import (
    HashedPIN,
    HashFunction,
    LegacyHashData,
    LegacyHashFunction,
    QRCodeIdentification,
    RFIDIdentification,
    RFIDType,
)

PIN = "987654"
HASH = "$2a$10$Zq7Hashed0PinValue1"
EVCO = "DE-8EO-CAB123456-7"
UID = "04A2B3C4D5E6F7"


def test_a_qr_code_identification_shows_neither_pin_nor_contract() -> None:
    shown = repr(QRCodeIdentification(evco_id=EVCO, pin=PIN))
    assert shown.startswith("QRCodeIdentification(")
    assert PIN not in shown
    assert "CAB123456" not in shown


def test_hashes_and_their_salt_stay_out() -> None:
    hashed = HashedPIN(value=HASH, function=HashFunction.BCRYPT,
                       legacy_hash_data=LegacyHashData(function=LegacyHashFunction.MD5,
                                                       salt="pepper", value="5f4dcc3b5aa7"))
    for shown in (repr(hashed), repr(QRCodeIdentification(evco_id=EVCO, hashed_pin=hashed)),
                  repr(hashed.legacy_hash_data)):
        for secret in (HASH, "pepper", "5f4dcc3b5aa7"):
            assert secret not in shown
    assert "Bcrypt" in repr(hashed)  # what is not secret stays readable


def test_a_card_shows_its_type_not_its_numbers() -> None:
    shown = repr(RFIDIdentification(uid=UID, rfid=RFIDType.MIFARE_DES, evco_id=EVCO,
                                    printed_number="1234 5678 9012"))
    assert "mifareDes" in shown
    for secret in (UID, "CAB123456", "1234 5678 9012"):
        assert secret not in shown


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    configure_logging("console", "debug", stream=out)
    yield out
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def test_a_decoded_request_logged_at_debug_carries_no_pin(debug_log: io.StringIO) -> None:
    body = codec.encode_json({
        "OperatorID": "DE*ABC", "EvseID": "DE*ABC*E1234*1",
        "Identification": {"QRCodeIdentification": {"EvcoID": EVCO, "PIN": PIN}},
    })
    request = messages.decode_message("eRoamingAuthorizeStart", body)
    assert isinstance(request, AuthorizeStart)
    structlog.get_logger().debug("sending", request=request)
    # The stdlib path renders the model with %r, unmasked by any key.
    logging.getLogger("hardening").debug("sending %r", request)
    text = debug_log.getvalue()
    assert "AuthorizeStart(" in text
    assert PIN not in text
    assert "CAB123456" not in text
