"""Fixtures for the simulator's pure parts: a hub with a card list, client certificates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization

from hubject_connector import certs
from hubject_connector.simulator.config import Card
from hubject_connector.simulator.hub import Hub, HubRules
from hubject_connector.simulator.recording import ClientCertificate
from hubject_connector.simulator.state import CardList, SimulatorState
from tests.unit.simulator import payloads


def client_certificate(operator_id: str) -> ClientCertificate:
    """A self-signed client certificate whose subject carries ``operator_id``."""
    key = certs.new_key("ec")
    cert = certs.issue_certificate(certs.cpo_client_subject(operator_id), key, usage="client")
    return ClientCertificate.from_der(cert.public_bytes(serialization.Encoding.DER))


class Clock:
    """A settable wall clock for the hub."""

    def __init__(self) -> None:
        self.now = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(**delta)


@pytest.fixture(scope="session")
def abc_client() -> ClientCertificate:
    """The client certificate of operator DE*ABC."""
    return client_certificate(payloads.OPERATOR_ID)


@pytest.fixture
def clock() -> Clock:
    """A wall clock the test moves."""
    return Clock()


@pytest.fixture
def state() -> SimulatorState:
    """Empty state with one authorized UID, one authorized EvcoID and one refused UID."""
    return SimulatorState(cards=CardList([
        Card(uid=payloads.UID, provider_id=payloads.PROVIDER_ID),
        Card(evco_id=payloads.EVCO_ID),
        Card(uid="0BADCAFE", authorized=False),
    ]))


@pytest.fixture
def hub(state: SimulatorState, clock: Clock) -> Hub:
    """A hub over ``state`` with the default rules."""
    return Hub(state, HubRules(), clock=clock)
