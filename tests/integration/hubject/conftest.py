"""A real simulator over mutual TLS on 127.0.0.1, and clients configured for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry

from hubject_connector.certs import DevPki
from hubject_connector.config import HubjectConfig, RetryConfig
from hubject_connector.oicp import codec
from hubject_connector.oicp.authorization import AuthorizeStart
from hubject_connector.oicp.evse import PushEvseStatus
from hubject_connector.simulator import Card, Simulator, SimulatorConfig

OPERATOR_ID = "DE*ABC"
CARD_UID = "04A1B2C3"

#: Quick retries: the tests check what is repeated, not how long it waits.
FAST_RETRY = RetryConfig(attempts=3, initial_delay_seconds=0.01, max_delay_seconds=0.05)


def status_push(status: str = "Available", evse: str = "DE*ABC*E1234*1") -> PushEvseStatus:
    """A valid eRoamingPushEvseStatus (fullLoad, so it is accepted however often it comes)."""
    return codec.load(PushEvseStatus, {
        "ActionType": "fullLoad",
        "OperatorEvseStatus": {
            "OperatorID": OPERATOR_ID,
            "OperatorName": "ABC Charging",
            "EvseStatusRecord": [{"EvseID": evse, "EvseStatus": status}],
        },
    })


def authorize_start() -> AuthorizeStart:
    """A valid eRoamingAuthorizeStart for the card the simulator knows."""
    return codec.load(AuthorizeStart, {
        "OperatorID": OPERATOR_ID,
        "EvseID": "DE*ABC*E1234*1",
        "Identification": {"RFIDMifareFamilyIdentification": {"UID": CARD_UID}},
    })


@pytest.fixture(autouse=True)
def default_structlog() -> Iterator[None]:
    """structlog's defaults for the test, so ``capture_logs`` sees every level.

    Another test may have configured logging (and a level filter) process-wide.
    """
    saved = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)


@pytest.fixture
def simulator_config(dev_pki: DevPki) -> SimulatorConfig:
    """The simulator serves with the dev PKI and knows one card."""
    return SimulatorConfig.from_dev_pki(dev_pki, cards=(Card(uid=CARD_UID),))


@pytest.fixture
async def simulator(simulator_config: SimulatorConfig) -> AsyncIterator[Simulator]:
    """A running fake Hubject, stopped after the test."""
    async with Simulator(simulator_config) as running:
        yield running


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh metrics registry per test."""
    return CollectorRegistry()


def client_config(pki: DevPki, target: Simulator | str, **changes: Any) -> HubjectConfig:
    """A client configuration for ``target`` (a simulator or a base URL): the CPO
    certificate, the dev CA, quick retries."""
    config = HubjectConfig(
        operator_id=OPERATOR_ID,
        base_url=target if isinstance(target, str) else target.url,
        client_cert=pki.cpo_client_cert,
        client_key=pki.cpo_client_key,
        ca_bundle=pki.ca_cert,
        timeout_seconds=10.0,
        connect_timeout_seconds=5.0,
        retry=FAST_RETRY,
    )
    return replace(config, **changes)
