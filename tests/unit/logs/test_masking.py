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
