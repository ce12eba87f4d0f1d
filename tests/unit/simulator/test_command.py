"""The simulator command's options, as parsed (no server started)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from hubject_connector import cli
from hubject_connector.certs import make_dev_pki
from hubject_connector.cli.simulator import config_from_args
from hubject_connector.errors import ConfigError


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["simulator", *argv])


def test_pki_folder_with_cards_and_limits(tmp_path: Path) -> None:
    pki = make_dev_pki(tmp_path / "pki")
    cards = tmp_path / "cards.json"
    cards.write_text('[{"uid": "04A1B2C3"}]')
    args = parse("--pki", str(pki.directory), "--cards", str(cards), "--port", "0",
                 "--rate-limit", "AuthorizeStop=5", "--rate-limit", "PushEvseStatus=0")
    config = config_from_args(args)
    assert (config.server_cert, config.client_ca, config.emp_cert) == (
        pki.server_cert, pki.ca_cert, pki.hubject_client_cert)
    assert (config.host, config.port) == ("127.0.0.1", 0)
    assert [c.uid for c in config.cards] == ["04A1B2C3"]
    assert config.rate_limit("AuthorizeStop") == 5
    assert config.rate_limit("PushEvseStatus") is None


def test_default_port() -> None:
    args = parse("--cert", "s.pem", "--key", "s.key", "--ca", "ca.pem")
    assert args.port == 8444
    assert config_from_args(args).server_cert == Path("s.pem")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "give --pki DIR"),
        (("--cert", "s.pem"), "all of --cert, --key and --ca"),
        (("--pki", "x", "--ca", "ca.pem"), "not both"),
        (("--cert", "a", "--key", "b", "--ca", "c", "--rate-limit", "AuthorizeStop"),
         "OPERATION=N"),
        (("--cert", "a", "--key", "b", "--ca", "c", "--rate-limit", "Nope=3"), "Nope"),
    ],
)
def test_bad_options_are_configuration_errors(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_args(parse(*argv))
