"""mask_identifier and the masking rules, on their own."""

from __future__ import annotations

import pytest

from hubject_connector.logs import mask_identifier, mask_text

EVCO_IDS = ["DE-8EO-CAB123456-7", "DE8EOCAB1234567", "DE*8EO*123456*X", "DE-8EO-123456-9"]
UIDS = ["04A2B3C4", "04A2B3C4D5E6F7", "0123456789ABCDEF0123"]


@pytest.mark.parametrize("evco_id", EVCO_IDS)
def test_an_evco_id_keeps_its_provider_prefix_only(evco_id: str) -> None:
    masked = mask_identifier(evco_id)
    assert masked != evco_id
    assert len(masked) == len(evco_id)
    compact = masked.replace("-", "").replace("*", "")
    assert compact == evco_id.replace("-", "").replace("*", "")[:5]


def test_the_masked_form_is_documented_style() -> None:
    assert mask_identifier("DE-8EO-CAB123456-7") == "DE-8EO-*********-*"
    assert mask_identifier("DE*8EO*123456*X") == "DE*8EO*********"
    assert mask_identifier("04A2B3C4D5E6F7") == "04************"


@pytest.mark.parametrize("uid", UIDS)
def test_a_uid_keeps_two_hex_digits(uid: str) -> None:
    assert mask_identifier(uid) == uid[:2] + "*" * (len(uid) - 2)


def test_masked_text_is_not_masked_again() -> None:
    for value in [*EVCO_IDS, *UIDS]:
        once = mask_text(f"id {value}.")
        assert once != f"id {value}."
        assert mask_text(once) == once


def test_other_values_keep_at_most_a_quarter() -> None:
    assert mask_identifier("ABCDEFGHIJKL") == "ABC*********"
    assert mask_identifier("12") == "**"


def test_free_text_is_masked_between_delimiters() -> None:
    text = "card 04A2B3C4D5E6F7 contract=DE-8EO-CAB123456-7, other (DE*8EO*123456*X)."
    masked = mask_text(text)
    assert masked == "card 04************ contract=DE-8EO-*********-*, other (DE*8EO*********)."


def test_evse_ids_and_session_ids_in_text_are_left_alone() -> None:
    text = "EVSE DE*ABC*E123456 session B2B1A7D8-1234-4ABC-9DEF-0123456789AB operator DE*ABC"
    assert mask_text(text) == text


def test_ids_inside_longer_words_are_not_touched() -> None:
    text = "hash 004A2B3C4D and name XDE-8EO-CAB123456-7Y"
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("text", "hidden", "shown"),
    [
        ("card 04a2b3c4d5e6f7 seen", "a2b3c4d5e6f7", "04************"),
        ("card 04:A2:B3:C4 seen", "A2:B3:C4", "04:**:**:**"),
        ("card 04:a2:b3:c4:d5:e6:f7 seen", "a2:b3:c4", "04:**:**:**:**:**:**"),
        ("contract DE-8EO-CAB123456-x!", "CAB123456", "DE-8EO-*********-*"),
        ("contract de8eoc12345678x.", "c12345678", "de8eo**********"),
    ],
    ids=["lower-case-uid", "colon-uid", "colon-uid-7-bytes", "check-letter", "lower-case"],
)
def test_identifiers_are_masked_in_any_case_and_byte_form(
    text: str, hidden: str, shown: str
) -> None:
    masked = mask_text(text)
    assert hidden not in masked
    assert shown in masked
    assert mask_text(masked) == masked


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('{"QRCodeIdentification":{"EvcoID":"DE-8EO-CAB123456-7","PIN":"4711"}}', "4711"),
        ("{'pin': '4711', 'x': 1}", "4711"),
        ('{"HashedPIN":{"Value":"$2a$10$abcdefgh","Function":"Bcrypt"}}', "abcdefgh"),
        ('payload "{\\"PIN\\":\\"4711\\"}" refused', "4711"),
        ("POST https://backend:hunter2@cpo.example/hook: 503", "hunter2"),
        ("amqp://guest:hunter2@broker:5672/ unreachable", "hunter2"),
        ("GET /x?api_key=k3y&page=2", "k3y"),
        ("access_token=t0ken; expires", "t0ken"),
        ("Cookie: session=c00kie; theme=dark", "c00kie"),
        ("{'Authorization': 'Bearer b3arer.t0k'}", "b3arer"),
        ("header Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ('{"credentials": "cr3ds", "client_secret": "s3cr3t"}', "cr3ds"),
        ('{"credentials": "cr3ds", "client_secret": "s3cr3t"}', "s3cr3t"),
        ("webhook_password=w3bhook", "w3bhook"),
        ("X-Api-Key: k3y", "k3y"),
    ],
)
def test_secrets_in_free_text_are_redacted(text: str, secret: str) -> None:
    masked = mask_text(text)
    assert secret not in masked
    assert "<redacted>" in masked
    assert mask_text(masked) == masked


@pytest.mark.parametrize(
    "text",
    [
        "read size 67108864 bytes on 20240101",
        "retry in 30 s, attempt 12345678901234",
        "fingerprint AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01",
        "at 2024-03-01T10:00:00.123+01:00 after 12:30:45",
        "/Identification/QRCodeIdentification/PIN: is 25 characters long, over the limit of 20",
        "/Identification/RFIDMifareFamilyIdentification/UID: does not match the UID pattern",
        "bus.embedded.auth_token_file: file /run/token does not exist",
        "takes one of HashedPIN and PIN, not both",
        "QRCodeIdentification(hashed_pin=None)",
    ],
    ids=["numbers", "long-number", "fingerprint", "times", "pointer-pin", "pointer-uid",
         "setting-name", "rule-text", "none"],
)
def test_numbers_times_and_error_texts_are_not_over_masked(text: str) -> None:
    assert mask_text(text) == text


def test_a_uid_written_in_decimal_digits_is_masked_by_its_key() -> None:
    assert mask_text('{"UID":"12345678"}') == '{"UID":"12******"}'
    assert mask_text("card uid=12345678") == "card uid=12******"
