"""``hubject-connector serve`` as an operator runs it: a process, a config file, signals.

``sys.executable -m hubject_connector serve --config FILE`` with a generated configuration:
the dev PKI, the simulator as Hubject (and as the EMP calling the connector), the embedded
bus and SQLite in tmp_path, a webhook backend, every port 0. The started service logs one
line with its addresses; the tests read the ports from it.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hubject_connector.certs import DevPki
from hubject_connector.simulator import Simulator
from tests.integration.service.harness import (
    EVCO_ID,
    EVSE_ID,
    WAIT,
    Backend,
    ServeProcess,
    free_port,
    log_event,
    settings,
    simulator_config,
    write_config,
)

pytestmark = pytest.mark.slow


@pytest.fixture
async def simulator(dev_pki: DevPki) -> AsyncIterator[Simulator]:
    """A running fake Hubject (it also plays the EMP calling the connector)."""
    async with Simulator(simulator_config(dev_pki)) as running:
        yield running


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    """The webhook backend."""
    async with Backend() as made:
        yield made


@pytest.fixture
def data(dev_pki: DevPki, tmp_path: Path, simulator: Simulator, backend: Backend
         ) -> dict[str, Any]:
    """A valid configuration of the whole service, as TOML data to change."""
    return settings(dev_pki, tmp_path, hubject_url=simulator.url, webhook_url=backend.url)


async def serve(tmp_path: Path, data: dict[str, Any], launched: list[ServeProcess]
                ) -> ServeProcess:
    process = await ServeProcess.launch(write_config(tmp_path / "connector.toml", data))
    launched.append(process)
    return process


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def test_serve_answers_healthz_and_readyz(
    tmp_path: Path, data: dict[str, Any], launched: list[ServeProcess]
) -> None:
    process = await serve(tmp_path, data, launched)
    started = await process.wait_started()
    assert started["inbound"].startswith("https://127.0.0.1:")
    assert started["bus_api"].startswith("http://127.0.0.1:")
    assert started["hubject"] == data["hubject"]["base_url"]
    assert (await get(started["ops"] + "/healthz"))[0] == 200
    status, body = await get(started["ops"] + "/readyz")
    assert status == 200, body
    process.signal(signal.SIGTERM)
    assert await process.finish() == 0
    starts = [e for e in map(log_event, process.stderr_lines) if e and e["event"] ==
              "service.started"]
    assert len(starts) == 1


async def test_sigterm_during_a_remote_start_still_answers_it_and_exits_0(
    tmp_path: Path, data: dict[str, Any], launched: list[ServeProcess],
    simulator: Simulator, backend: Backend, dev_pki: DevPki,
) -> None:
    # The backend keeps its answer back until the test has seen the server stop accepting.
    backend.hold = asyncio.Event()
    backend.delay = 1.0
    process = await serve(tmp_path, data, launched)
    started = await process.wait_started()
    async with simulator.emp(started["inbound"], ca=dev_pki.ca_cert, timeout=WAIT) as emp:
        remote_start = asyncio.create_task(emp.remote_start(EVSE_ID, EVCO_ID))
        async with asyncio.timeout(WAIT):
            await backend.received.wait()
        process.signal(signal.SIGTERM)
        await refused(started["inbound"])
        assert not remote_start.done()
        backend.hold.set()
        ack = await remote_start
    assert ack.result is True
    assert ack.status_code.code == "000"
    assert await process.finish() == 0
    assert process.plain_stderr() == []
    events = [e["event"] for e in map(log_event, process.stderr_lines) if e]
    assert events.index("service.stopping") < events.index("service.stopped")


async def refused(url: str) -> None:
    """Wait until a new connection to ``url``'s host and port is refused."""
    host, port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    async with asyncio.timeout(WAIT):
        while True:
            try:
                _, writer = await asyncio.open_connection(host, int(port))
            except OSError:
                return
            writer.close()
            await asyncio.sleep(0.05)


async def test_a_missing_certificate_file_exits_2_naming_the_file(
    tmp_path: Path, data: dict[str, Any], launched: list[ServeProcess]
) -> None:
    missing = tmp_path / "nowhere" / "client.pem"
    data["hubject"]["client_cert"] = str(missing)
    process = await serve(tmp_path, data, launched)
    assert await process.finish() == 2
    assert process.started is None
    assert process.messages() == [f"hubject.client_cert: file {missing} does not exist"]


async def test_a_key_of_another_certificate_exits_2_naming_the_key_file(
    tmp_path: Path, data: dict[str, Any], launched: list[ServeProcess], dev_pki: DevPki
) -> None:
    data["hubject"]["client_key"] = str(dev_pki.hubject_client_key)
    process = await serve(tmp_path, data, launched)
    assert await process.finish() == 2
    lines = process.messages()
    assert len(lines) == 1, process.stderr_lines
    assert lines[0].startswith("hubject.client_key: ")
    assert str(dev_pki.hubject_client_key) in lines[0]


async def test_an_inbound_key_that_does_not_fit_exits_2_naming_the_file(
    tmp_path: Path, data: dict[str, Any], launched: list[ServeProcess], dev_pki: DevPki
) -> None:
    data["inbound"]["tls_key"] = str(dev_pki.other_server_key)
    process = await serve(tmp_path, data, launched)
    assert await process.finish() == 2
    lines = process.messages()
    assert len(lines) == 1, process.stderr_lines
    assert lines[0].startswith("inbound.tls_")
    assert str(dev_pki.other_server_key) in lines[0] or str(dev_pki.server_cert) in lines[0]


async def test_an_unreachable_rabbitmq_exits_1_with_one_line(
    tmp_path: Path, data: dict[str, Any], launched: list[ServeProcess]
) -> None:
    port = free_port()
    data["bus"]["kind"] = "rabbitmq"
    data["bus"]["rabbitmq"] = {"url": f"amqp://guest:secret-word@127.0.0.1:{port}/"}
    process = await serve(tmp_path, data, launched)
    assert await process.finish() == 1
    assert process.started is None
    lines = process.plain_stderr()
    assert len(lines) == 1, process.stderr_lines
    assert lines[0].startswith("hubject-connector: bus.rabbitmq.url: ")
    assert f"127.0.0.1:{port}" in lines[0]
    assert "secret-word" not in "\n".join(process.stderr_lines)
    assert not any("Traceback" in line for line in process.stderr_lines)


async def test_a_missing_setting_for_serving_exits_2_naming_it(
    tmp_path: Path, data: dict[str, Any], launched: list[ServeProcess]
) -> None:
    del data["hubject"]["operator_id"]
    process = await serve(tmp_path, data, launched)
    assert await process.finish() == 2
    lines = process.messages()
    assert len(lines) == 1, process.stderr_lines
    assert lines[0].startswith("hubject.operator_id: is required to serve")
