"""The Python API users drive the simulator with: waiting, resetting, configuring."""

from __future__ import annotations

import asyncio

import pytest

from hubject_connector.simulator import Card, Simulator, SimulatorConfig
from tests.integration.simulator.conftest import CpoClient
from tests.unit.simulator import payloads


@pytest.fixture
def hubject_simulator_config(hubject_simulator_config: SimulatorConfig) -> SimulatorConfig:
    """Users change the plugin's simulator by overriding this fixture, as here."""
    return hubject_simulator_config.replace(
        cards=(Card(uid=payloads.UID, provider_id="NL-ABC"),),
        rate_limits={"AuthorizeStart": 1},
    )


async def test_overridden_config_is_used(cpo: CpoClient) -> None:
    first = await cpo.post("AuthorizeStart", payloads.authorize_start())
    assert first.json["ProviderID"] == "NL-ABC"
    assert (await cpo.post("AuthorizeStart", payloads.authorize_start())).status == 429


async def test_wait_for_requests(cpo: CpoClient) -> None:
    sim: Simulator = cpo.simulator
    status = payloads.evse_status("fullLoad", {payloads.evse_id(1): "Available"})
    pushes = asyncio.gather(cpo.post("PushEvseStatus", status),
                            cpo.post("ChargeDetailRecord", payloads.cdr()))
    records = await sim.wait_for_requests(1, operation="PushEvseStatus")
    assert [r.operation for r in records] == ["PushEvseStatus"]
    await pushes
    assert len(await sim.wait_for_requests(2)) == 2
    with pytest.raises(TimeoutError):
        await sim.wait_for_requests(3, give_up_after=0.05)


async def test_reset_forgets_state_records_and_faults(cpo: CpoClient) -> None:
    sim = cpo.simulator
    await cpo.post("ChargeDetailRecord", payloads.cdr())
    sim.faults.http_503(5)
    sim.reset()
    assert (sim.requests, sim.state.cdrs, sim.faults.pending) == ([], {}, 0)
    assert (await cpo.post("ChargeDetailRecord", payloads.cdr())).json["Result"] is True
    assert [c.uid for c in sim.cards] == [payloads.UID], "the card list stays"
