"""The flows inside ``hubject-connector serve``: a backend, the service process, Hubject.

The service runs as the operator runs it (a process, its configuration file); the backend
posts to the embedded bus's HTTP API and reads results on its webhook. A ``kill -9`` in the
middle of the CDRs loses none and sends none twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hubject_connector.certs import DevPki
from hubject_connector.simulator import FaultKind, Simulator
from tests.e2e.conftest import HttpBackend
from tests.integration.flows import messages
from tests.integration.flows.conftest import eventually
from tests.integration.service.harness import ServeProcess, settings, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
async def backend() -> AsyncIterator[HttpBackend]:
    """The backend's webhook (results and replies arrive there)."""
    made = HttpBackend()
    await made.start_webhook()
    try:
        yield made
    finally:
        await made.close()


def service_settings(pki: DevPki, tmp_path: Path, simulator: Simulator,
                     backend: HttpBackend) -> dict[str, Any]:
    """The whole service on 127.0.0.1; a short lease so a killed process's work returns."""
    data = settings(pki, tmp_path, hubject_url=simulator.url, webhook_url=backend.webhook_url)
    data["bus"]["embedded"]["lease_seconds"] = 1.0
    data["flows"].update(status_max_wait_seconds=0.1, cdr_retry_initial_delay_seconds=0.2,
                         cdr_retry_max_delay_seconds=0.5, cdr_retry_for_seconds=120.0)
    return data


async def start(config: Path, launched: list[ServeProcess], backend: HttpBackend) -> ServeProcess:
    """Launch ``serve``; point the backend at its bus API."""
    process = await ServeProcess.launch(config)
    launched.append(process)
    started = await process.wait_started()
    backend.messages_url = f"{started['bus_api']}/v1/messages"
    return process


async def test_cdrs_reach_hubject_exactly_once_across_a_kill_9(
    dev_pki: DevPki, tmp_path: Path, simulator: Simulator, backend: HttpBackend,
    launched: list[ServeProcess],
) -> None:
    config = write_config(tmp_path / "connector.toml",
                          service_settings(dev_pki, tmp_path, simulator, backend))
    simulator.faults.fail_percentage(
        30, kinds=[FaultKind.HTTP_503, FaultKind.DROP_AFTER_PROCESSING],
        operation="ChargeDetailRecord", seed=3)
    # Hubject answers slowly, so that the kill finds CDRs in flight.
    simulator.faults.latency(0.05, operation="ChargeDetailRecord")
    first = await start(config, launched, backend)
    docs = [messages.cdr() for _ in range(30)]
    for doc in docs:
        await backend.send(doc)
    await eventually(lambda: len({r["data"]["message_id"] for r in backend.results}) >= 10,
                     "a third of the results")
    first.process.kill()
    await first.process.wait()
    done_before = {r["data"]["message_id"] for r in backend.results}
    assert len(done_before) < len(docs), "the kill came after the last CDR"

    await start(config, launched, backend)
    for doc in docs:
        await backend.result(doc["id"])

    outcomes = {r["data"]["message_id"]: r["data"]["outcome"] for r in backend.results}
    assert Counter(outcomes[doc["id"]] for doc in docs) == Counter({"accepted": len(docs)})
    sessions = {doc["data"]["session_id"] for doc in docs}
    accepted = Counter(str(call.json["SessionID"])
                       for call in simulator.requests_of("ChargeDetailRecord")
                       if call.result is True)
    assert accepted == Counter(dict.fromkeys(sessions, 1))
    assert set(simulator.state.cdrs) == sessions


async def test_statuses_and_evse_data_flow_through_the_service(
    dev_pki: DevPki, tmp_path: Path, simulator: Simulator, backend: HttpBackend,
    launched: list[ServeProcess],
) -> None:
    config = write_config(tmp_path / "connector.toml",
                          service_settings(dev_pki, tmp_path, simulator, backend))
    await start(config, launched, backend)
    upsert = messages.upsert("DE*ABC*E123456*1")
    newer = messages.status("DE*ABC*E123456*1", "Occupied", at=2)
    older = messages.status("DE*ABC*E123456*1", "Available", at=1)
    for doc in (upsert, newer):
        await backend.send(doc)
    assert (await backend.result(upsert["id"]))["outcome"] == "accepted"
    assert (await backend.result(newer["id"]))["outcome"] == "accepted"
    await backend.send(older)

    assert (await backend.result(older["id"]))["outcome"] == "dropped"
    assert dict(simulator.state.evse_status_of("DE*ABC")) == {"DE*ABC*E123456*1": "Occupied"}
    assert list(simulator.state.evse_data_of("DE*ABC")) == ["DE*ABC*E123456*1"]
