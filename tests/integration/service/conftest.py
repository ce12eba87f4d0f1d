"""Fixtures of the service tests: the simulator as Hubject, a webhook backend, processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import structlog

from hubject_connector.certs import DevPki
from hubject_connector.simulator import Simulator
from tests.integration.service import harness
from tests.integration.service.harness import (
    Backend,
    ServeProcess,
    rabbitmq_reachable,
    simulator_config,
    unique_rabbitmq_names,
)


@pytest.fixture(autouse=True)
def default_structlog() -> Iterator[None]:
    """structlog's defaults for the test (a CLI test may have configured it process-wide)."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)


@pytest.fixture
async def simulator(dev_pki: DevPki) -> AsyncIterator[Simulator]:
    """A running fake Hubject (it also plays the EMP calling the connector)."""
    async with Simulator(simulator_config(dev_pki)) as running:
        yield running


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    """The webhook backend, answering at once (tests change ``delay`` and ``answer``)."""
    async with Backend() as made:
        yield made


@pytest.fixture
async def serve_processes() -> AsyncIterator[list[ServeProcess]]:
    """Processes launched by a test; any still running at the end is killed."""
    async with harness.serve_processes() as made:
        yield made


@pytest.fixture
def rabbitmq_names() -> dict[str, str]:
    """Names unique to the test, for a service on the RabbitMQ at 127.0.0.1:5672."""
    if not rabbitmq_reachable():
        pytest.fail("RabbitMQ is not reachable at 127.0.0.1:5672 (guest/guest); start it with "
                    "`rabbitmq-server -detached`")
    return unique_rabbitmq_names()
