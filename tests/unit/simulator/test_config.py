"""Simulator settings: cards, card files, rate limits, PKI folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubject_connector.errors import ConfigError
from hubject_connector.oicp.common import Identification, RFIDMifareFamilyIdentification
from hubject_connector.simulator.config import (
    DEFAULT_PROVIDER_ID,
    Card,
    SimulatorConfig,
    load_cards,
)
from hubject_connector.simulator.state import CardList

PEM = Path("x.pem")


def config(**settings: object) -> SimulatorConfig:
    return SimulatorConfig(server_cert=PEM, server_key=PEM, client_ca=PEM, **settings)  # type: ignore[arg-type]


def test_card_providers() -> None:
    assert Card(evco_id="DE*8EO*123456*X").provider == "DE-8EO"
    assert Card(uid="04A1B2C3").provider == DEFAULT_PROVIDER_ID
    assert Card(uid="04A1B2C3", provider_id="NL-ABC").provider == "NL-ABC"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one"),
        ({"uid": "04A1B2C3", "evco_id": "DE-8EO-CAB123456-7"}, "exactly one"),
        ({"uid": "04a1b2c3"}, "not a UID"),
        ({"evco_id": "DE-8EO"}, "not an EvcoID"),
        ({"uid": "04A1B2C3", "provider_id": "DE*8EO*X"}, "not a ProviderID"),
    ],
)
def test_invalid_cards_are_refused(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Card(**fields)  # type: ignore[arg-type]


def test_card_list_finds_by_uid_or_contract() -> None:
    cards = CardList([Card(uid="04A1B2C3"), Card(evco_id="DE-8EO-CAB123456-7")])
    found = cards.find(Identification(
        rfid_mifare_family=RFIDMifareFamilyIdentification(uid="04A1B2C3")))
    assert found is not None
    assert found.uid == "04A1B2C3"
    assert cards.find(Identification(
        rfid_mifare_family=RFIDMifareFamilyIdentification(uid="04A1B2C4"))) is None


def test_load_cards_from_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "cards.toml"
    toml.write_text(
        '[[card]]\nuid = "04A1B2C3"\nprovider_id = "DE-8EO"\n\n'
        '[[card]]\nevco_id = "DE-8EO-CAB123456-7"\nauthorized = false\n'
    )
    assert load_cards(toml) == (
        Card(uid="04A1B2C3", provider_id="DE-8EO"),
        Card(evco_id="DE-8EO-CAB123456-7", authorized=False),
    )
    json_file = tmp_path / "cards.json"
    json_file.write_text('[{"uid": "04A1B2C3"}]')
    assert load_cards(json_file) == (Card(uid="04A1B2C3"),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[card]]\nuid = "04A1B2C3"\ncolour = "red"\n', "unknown keys colour"),
        ('[[card]]\nuid = "zz"\n', "card 1: 'zz' is not a UID"),
        ('[[card]]\nuid = "04A1B2C3"\nauthorized = "yes"\n', "true or false"),
        ("card = [", "not valid"),
    ],
)
def test_bad_card_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cards.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_cards(path)


def test_missing_card_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_cards(tmp_path / "nope.toml")


def test_rate_limits_override_the_operation_table() -> None:
    cfg = config(rate_limits={"AuthorizeStop": 3, "PushEvseStatus": None})
    assert cfg.rate_limit("AuthorizeStop") == 3
    assert cfg.rate_limit("PushEvseStatus") is None
    assert cfg.rate_limit("PushEvseData") == 375


@pytest.mark.parametrize(
    "limits", [{"AuthorizeRemoteStart": 5}, {"PushEvseStatuz": 5}, {"AuthorizeStop": 0}]
)
def test_bad_rate_limits_are_refused(limits: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match="rate_limits"):
        config(rate_limits=limits)


def test_pki_dir_must_hold_the_dev_pki(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="certs dev-pki"):
        SimulatorConfig.from_pki_dir(tmp_path)
