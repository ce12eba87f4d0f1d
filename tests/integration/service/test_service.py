"""The whole service in this process: parts start in order, readiness tells the truth.

Real parts only: the simulator as Hubject over mutual TLS, the inbound server with the dev
PKI, the embedded bus and the SQLite state store in tmp_path (RabbitMQ through a TCP proxy
where the bus must go down), a webhook backend.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from hubject_connector.app import Service, StartupError, serve
from hubject_connector.bus.factory import build_bus
from hubject_connector.bus.topology import connector_queues
from hubject_connector.certs import DevPki
from hubject_connector.config import Config
from hubject_connector.errors import ConfigError
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.hubject.tls import ClientTls
from hubject_connector.simulator import Simulator
from hubject_connector.state.factory import build_store
from tests.integration.service.harness import (
    EVCO_ID,
    EVSE_ID,
    WAIT,
    Backend,
    TcpProxy,
    config_of,
    delete_rabbitmq_topology,
    free_port,
    settings,
)

RABBITMQ = ("127.0.0.1", 5672)


async def get_json(url: str) -> tuple[int, Any]:
    """Status and JSON body of a GET."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def readiness_becomes(service: Service, status: int) -> dict[str, Any]:
    """Poll /readyz until it answers ``status``; its body."""
    async with asyncio.timeout(WAIT):
        while True:
            got, body = await get_json(service.ops_url + "/readyz")
            if got == status:
                assert isinstance(body, dict)
                return body
            await asyncio.sleep(0.05)


@pytest.fixture
def config(dev_pki: DevPki, tmp_path: Path, simulator: Simulator, backend: Backend) -> Config:
    """The whole service on 127.0.0.1: embedded bus, SQLite, the simulator as Hubject."""
    return config_of(tmp_path, settings(dev_pki, tmp_path, hubject_url=simulator.url,
                                        webhook_url=backend.url))


@pytest.fixture
async def service(config: Config) -> AsyncIterator[Service]:
    """The running service, stopped after the test."""
    async with Service(config) as running:
        yield running


async def test_ready_when_every_part_runs(service: Service) -> None:
    status, body = await get_json(service.ops_url + "/readyz")
    assert status == 200, body
    assert set(body["checks"]) == {"service", "state_store", "bus", "client_certificate",
                                   "inbound", "flows"}
    assert body["not_ready"] == {}
    status, body = await get_json(service.ops_url + "/healthz")
    assert (status, body["status"]) == (200, "alive")


async def test_readiness_never_calls_hubject(service: Service, simulator: Simulator) -> None:
    before = len(simulator.requests)
    for _ in range(5):
        status, _ = await get_json(service.ops_url + "/readyz")
        assert status == 200
    assert len(simulator.requests) == before


async def test_a_remote_start_goes_through_the_running_service(
    service: Service, simulator: Simulator, backend: Backend, dev_pki: DevPki
) -> None:
    async with simulator.emp(service.inbound_url, ca=dev_pki.ca_cert) as emp:
        ack = await emp.remote_start(EVSE_ID, EVCO_ID)
    assert ack.result is True
    assert ack.status_code.code == "000"
    assert [command.data["evse_id"] for command in backend.commands] == [EVSE_ID]


async def test_metrics_show_every_part(service: Service) -> None:
    async with aiohttp.ClientSession() as session, \
            session.get(service.ops_url + "/metrics") as response:
        text = await response.text()
    assert response.status == 200
    for family in ("hubject_connector_ready", "hubject_connector_client_certificate_not_after"):
        assert family in text
    assert 'hubject_connector_ready{check="bus"} 1.0' in text


async def test_stop_closes_every_part_it_opened(config: Config) -> None:
    store = build_store(config.state)
    bus = build_bus(config.bus, queues=connector_queues(config.flows))
    service = Service(config, store=store, bus=bus)
    await service.start()
    assert (store.is_open, bus.is_connected) == (True, True)
    await service.stop()
    assert (store.is_open, bus.is_connected) == (False, False)
    assert service.lifecycle.phase == "stopped"
    assert not service.readiness.is_ready()


async def test_parts_handed_in_open_are_left_open(config: Config) -> None:
    store = build_store(config.state)
    await store.open()
    try:
        async with Service(config, store=store):
            pass
        assert store.is_open
    finally:
        await store.close()


async def test_an_expired_client_certificate_fails_the_start_naming_the_file(
    dev_pki: DevPki, tmp_path: Path, simulator: Simulator, backend: Backend
) -> None:
    data = settings(dev_pki, tmp_path, hubject_url=simulator.url, webhook_url=backend.url)
    data["hubject"]["client_cert"] = str(dev_pki.expired_client_cert)
    data["hubject"]["client_key"] = str(dev_pki.expired_client_key)
    with pytest.raises(ConfigError) as raised:
        await Service(config_of(tmp_path, data)).start()
    assert raised.value.key == "hubject.client_cert"
    assert str(dev_pki.expired_client_cert) in str(raised.value)
    assert "expired" in str(raised.value)


class Clock:
    """A wall clock the test can move forward."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


async def test_ready_goes_503_once_the_client_certificate_expires_while_serving(
    config: Config, dev_pki: DevPki
) -> None:
    clock = Clock()
    registry = CollectorRegistry()
    tls = ClientTls(config.hubject, now=clock)
    client = HubjectClient(config.hubject, tls=tls, registry=registry)
    async with Service(config, client=client, registry=registry) as service:
        assert (await get_json(service.ops_url + "/readyz"))[0] == 200
        assert tls.certificate is not None
        clock.offset = tls.certificate.not_after - clock() + dt.timedelta(seconds=1)
        status, body = await get_json(service.ops_url + "/readyz")
    assert status == 503
    assert list(body["not_ready"]) == ["client_certificate"]
    assert "expired" in body["not_ready"]["client_certificate"]


async def test_a_failed_start_stops_what_had_started(
    dev_pki: DevPki, tmp_path: Path, simulator: Simulator, backend: Backend
) -> None:
    data = settings(dev_pki, tmp_path, hubject_url=simulator.url, webhook_url=backend.url)
    # The server's key of another CA: the inbound server, started last, cannot use it.
    data["inbound"]["tls_key"] = str(dev_pki.other_server_key)
    config = config_of(tmp_path, data)
    store = build_store(config.state)
    bus = build_bus(config.bus, queues=connector_queues(config.flows))
    service = Service(config, store=store, bus=bus)
    with pytest.raises(ConfigError) as raised:
        await service.start()
    assert raised.value.key.startswith("inbound.tls_")
    assert not bus.is_connected
    assert not store.is_open


async def test_an_unreachable_state_store_fails_the_start_before_the_bus_connects(
    dev_pki: DevPki, tmp_path: Path, simulator: Simulator, backend: Backend
) -> None:
    data = settings(dev_pki, tmp_path, hubject_url=simulator.url, webhook_url=backend.url)
    data["state"] = {"kind": "postgresql", "postgresql": {
        "dsn": f"postgresql://postgres@127.0.0.1:{free_port()}/test"}}
    config = config_of(tmp_path, data)
    bus = build_bus(config.bus, queues=connector_queues(config.flows))
    with pytest.raises(StartupError) as raised:
        await Service(config, bus=bus).start()
    assert raised.value.setting == "state.postgresql.dsn"
    assert "\n" not in str(raised.value)
    assert not bus.is_connected


async def test_a_bus_api_open_to_the_network_without_a_token_is_a_configuration_error(
    dev_pki: DevPki, tmp_path: Path, simulator: Simulator, backend: Backend
) -> None:
    data = settings(dev_pki, tmp_path, hubject_url=simulator.url, webhook_url=backend.url)
    data["bus"]["embedded"]["http_host"] = "0.0.0.0"  # noqa: S104 - refused before binding
    store = build_store(config_of(tmp_path, data).state)
    with pytest.raises(ConfigError) as raised:
        await Service(config_of(tmp_path, data), store=store).start()
    assert raised.value.key == "bus.embedded.auth_token_file"
    assert not store.is_open


@pytest.mark.rabbitmq
async def test_ready_goes_503_while_rabbitmq_is_away_and_200_once_back(
    dev_pki: DevPki, tmp_path: Path, simulator: Simulator, backend: Backend,
    rabbitmq_names: dict[str, str],
) -> None:
    proxy = TcpProxy(*RABBITMQ)
    await proxy.start()
    data = settings(dev_pki, tmp_path, hubject_url=simulator.url, webhook_url=backend.url)
    data["bus"]["kind"] = "rabbitmq"
    data["bus"]["rabbitmq"] = {
        "url": f"amqp://guest:guest@{proxy.url_host}/",
        "reconnect_interval_seconds": 0.2,
        **rabbitmq_names,
    }
    config = config_of(tmp_path, data)
    try:
        async with Service(config) as service:
            await readiness_becomes(service, 200)
            await proxy.cut()
            body = await readiness_becomes(service, 503)
            assert list(body["not_ready"]) == ["bus"]
            await proxy.restore()
            await readiness_becomes(service, 200)
    finally:
        await proxy.cut()
        await delete_rabbitmq_topology(dataclasses.replace(
            config.bus.rabbitmq, url="amqp://guest:guest@127.0.0.1:5672/"), config.flows,
            config.bus.retry_delays_seconds)


async def test_a_stop_during_start_up_abandons_the_start_and_closes_what_opened(
    config: Config,
) -> None:
    stop = asyncio.Event()
    stop.set()
    with capture_logs() as logs:
        await serve(config, stop=stop)
    events = [entry["event"] for entry in logs]
    assert "service.started" not in events
    assert events[-1] == "service.stopped"
    # Nothing is left half-open: the next start on the same files is ready.
    async with Service(config) as service:
        assert service.readiness.is_ready()
