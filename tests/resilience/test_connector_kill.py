"""``hubject-connector serve`` killed with SIGKILL in the middle of a burst, then restarted.

The service runs as an operator runs it (a process and its configuration file) on
RabbitMQ, with its SQLite state store on disk. It is killed while Hubject holds CDRs and
a status push it sent: no chance to ack, record or publish anything. The restarted
process gets the unacked messages again from the broker and the pending statuses from
its store. (tests/e2e/test_serve_flows.py does the same on the embedded bus.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hubject_connector.bus.factory import build_bus
from hubject_connector.certs import DevPki
from hubject_connector.config import Config
from hubject_connector.simulator import Simulator
from tests.integration.flows.conftest import Backend, FlowEnv
from tests.integration.service.harness import (
    ServeProcess,
    config_of,
    delete_rabbitmq_topology,
    settings,
    unique_rabbitmq_names,
    write_config,
)
from tests.resilience.conftest import (
    WAIT,
    Burst,
    assert_nothing_lost,
    send_all,
    settled,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


def service_settings(pki: DevPki, tmp_path: Path, simulator: Simulator,
                     rabbitmq_url: str) -> dict[str, Any]:
    """The service on RabbitMQ (names of its own), short pauses, CDR retries for minutes."""
    data = settings(pki, tmp_path, hubject_url=simulator.url)
    data["bus"]["kind"] = "rabbitmq"
    data["bus"]["rabbitmq"] = {"url": rabbitmq_url, "reconnect_interval_seconds": 0.5,
                               **unique_rabbitmq_names()}
    data["flows"].update(status_batch_size=50, status_max_wait_seconds=0.1,
                         cdr_retry_initial_delay_seconds=0.2, cdr_retry_max_delay_seconds=0.5,
                         cdr_retry_for_seconds=120.0)
    return data


@pytest.fixture
async def service(dev_pki: DevPki, tmp_path: Path, simulator: Simulator,
                  rabbitmq_url: str) -> AsyncIterator[tuple[Path, Config, list[ServeProcess]]]:
    """The configuration file, what it says, and the processes started (killed at the end)."""
    data = service_settings(dev_pki, tmp_path, simulator, rabbitmq_url)
    config_file = write_config(tmp_path / "connector.toml", data)
    config = config_of(tmp_path, data)
    launched: list[ServeProcess] = []
    try:
        yield config_file, config, launched
    finally:
        for number, process in enumerate(launched, start=1):
            await process.kill()
            # Shown when the test fails: what each service process logged.
            print(f"--- serve process {number} ---", *process.stderr_lines, sep="\n")
        await delete_rabbitmq_topology(config.bus.rabbitmq, config.flows,
                                       config.bus.retry_delays_seconds)


async def launch(config_file: Path, launched: list[ServeProcess]) -> ServeProcess:
    """Start ``serve`` and wait until it says it started."""
    process = await ServeProcess.launch(config_file)
    launched.append(process)
    await process.wait_started()
    return process


async def test_a_kill_9_mid_burst_loses_nothing_and_sends_no_cdr_twice(
    service: tuple[Path, Config, list[ServeProcess]], simulator: Simulator, dev_pki: DevPki,
) -> None:
    config_file, config, launched = service
    rabbit = config.bus.rabbitmq
    backend = Backend(build_bus(replace(config.bus, rabbitmq=replace(
        rabbit, connection_name=f"{rabbit.connection_name}-backend")), serve=False))
    env = FlowEnv("rabbitmq", dev_pki, simulator, config, backend)
    first = await launch(config_file, launched)
    await backend.start()
    try:
        burst = Burst.make(cdrs=20, evses=5, changes=40)
        docs = burst.interleaved()
        held = [simulator.faults.hold(operation=op)
                for op in ("ChargeDetailRecord",) * 3 + ("PushEvseStatus",)]
        await send_all(backend, docs[: len(docs) // 2])
        for hold in held:
            async with asyncio.timeout(WAIT):
                await hold.arrived.wait()

        first.process.kill()
        await first.process.wait()
        for hold in held:
            hold.release()
        await send_all(backend, docs[len(docs) // 2 :])
        await launch(config_file, launched)

        await settled(backend, burst)
        # The killed process's held calls were answered to nobody: those CDRs are sent
        # again by the new process and Hubject says it has them (counted as accepted).
        assert_nothing_lost(env, burst, exactly_one_call=False, answers_lost=True)
    finally:
        await backend.close()
