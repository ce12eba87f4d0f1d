"""Rate limits, overlap detection and scripted faults, over real connections."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from hubject_connector.certs import DevPki
from hubject_connector.simulator import FaultKind, Simulator, SimulatorConfig, run_simulator
from tests.integration.simulator.conftest import CpoClient, client_ssl
from tests.unit.simulator import payloads


def status(n: int, value: str = "Available") -> dict[str, object]:
    return payloads.evse_status("fullLoad", {payloads.evse_id(n): value})


async def test_rate_limit_answers_429_with_retry_after(dev_pki: DevPki) -> None:
    async with run_simulator(pki=dev_pki, rate_limits={"AuthorizeStop": 2}) as sim:
        context = client_ssl(dev_pki.ca_cert, dev_pki.cpo_client_cert, dev_pki.cpo_client_key)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as s:
            cpo = CpoClient(sim, s)
            body = payloads.authorize_stop(payloads.SESSION_ID)
            answers = [await cpo.post("AuthorizeStop", body) for _ in range(3)]
            other = await cpo.post("AuthorizeStart", payloads.authorize_start())
    assert [a.status for a in answers] == [200, 200, 429]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
    assert other.status == 200, "the limit is per operation"
    assert sim.max_calls_per_minute("AuthorizeStop") == 3


async def test_rate_limit_can_change_while_running(cpo: CpoClient) -> None:
    cpo.simulator.set_rate_limit("PushEvseStatus", 1)
    assert (await cpo.post("PushEvseStatus", status(1))).status == 200
    assert (await cpo.post("PushEvseStatus", status(1))).status == 429


async def test_overlapping_pushes_are_flagged(cpo: CpoClient) -> None:
    sim = cpo.simulator
    held = sim.faults.hold(operation="PushEvseStatus")
    first = asyncio.create_task(cpo.post("PushEvseStatus", status(1, "Occupied")))
    await held.arrived.wait()
    # The first push is still unanswered when the second one arrives.
    second = await cpo.post("PushEvseStatus", status(1, "Available"))
    held.release()
    assert (await first).status == 200
    assert second.status == 200
    assert [(o.operation, o.first, o.second) for o in sim.overlaps] == [("PushEvseStatus", 1, 2)]
    assert all(r.overlapped for r in sim.requests)


async def test_one_push_after_another_is_not_flagged(cpo: CpoClient) -> None:
    for n in range(3):
        assert (await cpo.post("PushEvseStatus", status(n))).status == 200
    # Authorizations may run in parallel: they are not serialized.
    answers = await asyncio.gather(*(cpo.post("AuthorizeStart", payloads.authorize_start())
                                     for _ in range(3)))
    assert [a.status for a in answers] == [200] * 3
    assert cpo.simulator.overlaps == []


async def test_http_503(cpo: CpoClient) -> None:
    cpo.simulator.faults.http_503(operation="PushEvseStatus")
    assert (await cpo.post("PushEvseStatus", status(1))).status == 503
    assert cpo.simulator.state.evse_status_of("DE*ABC") == {}, "a 503 stores nothing"
    assert (await cpo.post("PushEvseStatus", status(1))).status == 200
    assert [r.fault for r in cpo.simulator.requests] == ["http-503", None]


async def test_http_429_with_retry_after(cpo: CpoClient) -> None:
    cpo.simulator.faults.http_429(2, retry_after=3)
    answers = [await cpo.post("ChargeDetailRecord", payloads.cdr()) for _ in range(3)]
    assert [a.status for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "3"


async def test_result_false_with_001(cpo: CpoClient) -> None:
    cpo.simulator.faults.result_false(2)
    ack = await cpo.post("ChargeDetailRecord", payloads.cdr())
    assert ack.status == 200
    assert ack.json["Result"] is False
    assert ack.json["StatusCode"]["Code"] == "001"
    authorization = await cpo.post("AuthorizeStart", payloads.authorize_start())
    assert authorization.json["AuthorizationStatus"] == "NotAuthorized"
    assert authorization.json["StatusCode"]["Code"] == "001"
    assert cpo.simulator.state.cdrs == {}


async def test_latency(cpo: CpoClient) -> None:
    cpo.simulator.faults.latency(0.2, times=1)
    assert (await cpo.post("PushEvseStatus", status(1))).status == 200
    assert (await cpo.post("PushEvseStatus", status(1))).status == 200
    first, second = cpo.simulator.requests
    assert first.ended is not None
    assert first.ended - first.started >= 0.2
    assert second.fault is None


async def test_dropped_connection(cpo: CpoClient) -> None:
    cpo.simulator.faults.drop_connection(operation="ChargeDetailRecord")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await cpo.post("ChargeDetailRecord", payloads.cdr())
    assert cpo.simulator.state.cdrs == {}
    [record] = cpo.simulator.requests
    assert (record.fault, record.http_status) == ("drop", None)
    # The next call, on a new connection, goes through.
    assert (await cpo.post("ChargeDetailRecord", payloads.cdr())).json["Result"] is True


async def test_dropped_answer_after_processing(cpo: CpoClient) -> None:
    cpo.simulator.faults.drop_connection(after_processing=True)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await cpo.post("ChargeDetailRecord", payloads.cdr())
    # Hubject stored the CDR; only the answer was lost, so sending it again is a duplicate.
    assert list(cpo.simulator.state.cdrs) == [payloads.SESSION_ID]
    again = await cpo.post("ChargeDetailRecord", payloads.cdr())
    assert again.json["StatusCode"]["Code"] == "022"


async def test_percentage_of_failures(cpo: CpoClient) -> None:
    cpo.simulator.faults.fail_percentage(50, kinds=[FaultKind.HTTP_503, FaultKind.DROP], seed=3)
    outcomes: list[int | str] = []
    for n in range(12):
        try:
            outcomes.append((await cpo.post("PushEvseStatus", status(n))).status)
        except aiohttp.ServerDisconnectedError:
            outcomes.append("dropped")
    assert set(outcomes) == {200, 503, "dropped"}
    faults = [r.fault for r in cpo.simulator.requests]
    assert faults.count(None) == outcomes.count(200)
    assert faults.count("drop") == outcomes.count("dropped")


async def test_stopping_releases_held_calls(dev_pki: DevPki) -> None:
    context = client_ssl(dev_pki.ca_cert, dev_pki.cpo_client_cert, dev_pki.cpo_client_key)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        sim = Simulator(SimulatorConfig.from_dev_pki(dev_pki))
        await sim.start()
        cpo = CpoClient(sim, session)
        held = sim.faults.hold()
        call = asyncio.create_task(cpo.post("PushEvseStatus", status(1)))
        await held.arrived.wait()
        await sim.stop()
        assert held.released
        answer = await call
    assert answer.status == 200
    assert not sim.running
