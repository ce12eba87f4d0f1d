"""pytest fixtures: a running fake Hubject for your own integration tests.

Enable it in your ``conftest.py``::

    pytest_plugins = ["hubject_connector.simulator.pytest_plugin"]

Then::

    async def test_push(hubject_simulator: Simulator,
                        hubject_simulator_pki: DevPki) -> None:
        # a client with hubject_simulator_pki.cpo_client_cert/key, trusting
        # hubject_simulator_pki.ca_cert, posting to hubject_simulator.url
        ...

Fixtures:

* ``hubject_simulator_pki`` (session): a throwaway development PKI; its CPO client
  certificate carries the OperatorID "DE*ABC".
* ``hubject_simulator_config``: the ``SimulatorConfig`` used; override this fixture to
  change the card list, rate limits or rules.
* ``hubject_simulator``: the running ``Simulator``, stopped after the test.

The async fixture needs pytest-asyncio (it is declared with ``pytest_asyncio.fixture``, so
it works in strict and auto mode).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from hubject_connector.certs import DevPki, make_dev_pki
from hubject_connector.simulator.app import Simulator
from hubject_connector.simulator.config import SimulatorConfig


@pytest.fixture(scope="session")
def hubject_simulator_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """A development PKI for the simulator and the client under test (OperatorID DE*ABC)."""
    return make_dev_pki(tmp_path_factory.mktemp("hubject-simulator-pki"), operator_id="DE*ABC")


@pytest.fixture
def hubject_simulator_config(hubject_simulator_pki: DevPki) -> SimulatorConfig:
    """How ``hubject_simulator`` is configured; override to change cards, limits, rules."""
    return SimulatorConfig.from_dev_pki(hubject_simulator_pki)


@pytest_asyncio.fixture
async def hubject_simulator(
    hubject_simulator_config: SimulatorConfig,
) -> AsyncIterator[Simulator]:
    """A fake Hubject on 127.0.0.1 (free port), with mutual TLS, for one test."""
    async with Simulator(hubject_simulator_config) as simulator:
        yield simulator
