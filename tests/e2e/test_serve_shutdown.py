"""SIGTERM while work is in flight: handed back, never lost; the grace period is the limit.

``serve`` as a process with the simulator as Hubject and a backend on the embedded bus's
HTTP API (results on its webhook). The simulator holds a call so that the signal finds it
in flight, deterministically.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hubject_connector.certs import DevPki
from hubject_connector.simulator import Simulator
from hubject_connector.simulator.emp import EmpCallError
from hubject_connector.simulator.recording import RecordedRequest
from tests.e2e.conftest import HttpBackend
from tests.integration.flows import messages
from tests.integration.service.harness import (
    EVCO_ID,
    EVSE_ID,
    WAIT,
    Backend,
    ServeProcess,
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


async def serve(config: Path, launched: list[ServeProcess]) -> dict[str, Any]:
    """Launch ``serve``; its started line."""
    process = await ServeProcess.launch(config)
    launched.append(process)
    return await process.wait_started()


def carries(record: RecordedRequest, status: str) -> bool:
    """Whether a recorded PushEvseStatus carries ``status``."""
    return f'"{status}"' in record.raw_body.decode("utf-8", "replace")


async def in_flight(simulator: Simulator, status: str) -> None:
    """Wait until a PushEvseStatus carrying ``status`` reached Hubject, still unanswered."""
    async with asyncio.timeout(WAIT):
        while True:
            if any(carries(r, status) and r.ended is None
                   for r in simulator.requests_of("PushEvseStatus")):
                return
            await asyncio.sleep(0.02)


async def test_a_status_push_hubject_has_not_answered_at_sigterm_is_pushed_after_restart(
    dev_pki: DevPki, tmp_path: Path, simulator: Simulator, launched: list[ServeProcess],
) -> None:
    backend = HttpBackend()
    await backend.start_webhook()
    try:
        data = settings(dev_pki, tmp_path, hubject_url=simulator.url,
                        webhook_url=backend.webhook_url, grace=3.0)
        data["flows"]["status_max_wait_seconds"] = 0.1
        config = write_config(tmp_path / "connector.toml", data)
        started = await serve(config, launched)
        backend.messages_url = f"{started['bus_api']}/v1/messages"
        upsert = messages.upsert("DE*ABC*E123456*1")
        await backend.send(upsert)
        assert (await backend.result(upsert["id"]))["outcome"] == "accepted"

        # From now on Hubject answers status pushes only after the grace period: the stop
        # can neither finish the push in flight nor send it again.
        simulator.faults.latency(60.0, operation="PushEvseStatus")
        status = messages.status("DE*ABC*E123456*1", "Occupied", at=1)
        await backend.send(status)
        await in_flight(simulator, "Occupied")
        first = launched[-1]
        first.signal(signal.SIGTERM)
        assert await first.finish() == 0
        early = [r["data"] for r in backend.results if r["data"]["message_id"] == status["id"]]
        assert early == []

        simulator.faults.clear()
        started = await serve(config, launched)
        backend.messages_url = f"{started['bus_api']}/v1/messages"
        assert (await backend.result(status["id"]))["outcome"] == "accepted"
        assert dict(simulator.state.evse_status_of("DE*ABC")) == {
            "DE*ABC*E123456*1": "Occupied"}
    finally:
        await backend.close()


async def test_the_grace_period_ends_a_remote_start_the_backend_never_answers(
    dev_pki: DevPki, tmp_path: Path, simulator: Simulator, launched: list[ServeProcess],
) -> None:
    backend = Backend(answer=None)
    await backend.start()
    try:
        # The grace period (1 s) is shorter than the reply deadline (8 s): the shutdown
        # does not wait for the deadline. The EMP gets a refusal (the backend could not be
        # reached once the bus closed) or, if the server went first, no answer.
        data = settings(dev_pki, tmp_path, hubject_url=simulator.url, webhook_url=backend.url,
                        grace=1.0)
        started = await serve(write_config(tmp_path / "connector.toml", data), launched)
        async with simulator.emp(started["inbound"], ca=dev_pki.ca_cert, timeout=WAIT) as emp:
            remote_start = asyncio.create_task(emp.remote_start(EVSE_ID, EVCO_ID))
            async with asyncio.timeout(WAIT):
                await backend.received.wait()
            launched[-1].signal(signal.SIGTERM)
            assert await launched[-1].finish() == 0
            try:
                ack = await remote_start
            except EmpCallError:
                pass
            else:
                assert ack.result is False
        unanswered = [e for e in map(log_event, launched[-1].stderr_lines)
                      if e and e["event"] == "inbound.answered_without_backend"]
        # Not the deadline's answer: the shutdown did not wait for it.
        assert [e["reason"] for e in unanswered] in ([], ["bus_error"])
    finally:
        await backend.stop()
