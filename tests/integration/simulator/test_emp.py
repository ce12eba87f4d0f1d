"""The simulator as EMP: remote commands to a tiny real HTTPS CPO server over mutual TLS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hubject_connector.certs import DevPki
from hubject_connector.oicp.operations import OPERATIONS, Direction
from hubject_connector.simulator import EmpCallError, Simulator
from hubject_connector.simulator.tls import peer_certificate, server_context
from tests.unit.simulator import payloads

EVSE_ID = payloads.evse_id(1)


@dataclass
class CpoServer:
    """A CPO's inbound endpoint: records what it got and acknowledges it."""

    url: str = ""
    received: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    http_status: int = 200


async def run_cpo(server: CpoServer, cert: Path, key: Path, ca: Path) -> AsyncIterator[CpoServer]:
    async def answer(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        client = peer_certificate(request.transport.get_extra_info("ssl_object")
                                  if request.transport else None)
        server.received.append((request.path, body, client.common_name if client else None))
        ack = {"Result": True, "StatusCode": {"Code": "000"}, "SessionID": body["SessionID"],
               "CPOPartnerSessionID": "cpo-1"}
        return web.json_response(ack, status=server.http_status)

    app = web.Application()
    for op in OPERATIONS.values():
        if op.direction is Direction.HUBJECT_TO_CPO:
            app.router.add_post("/api/oicp" + op.path, answer)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context(cert, key, ca))
    await site.start()
    server.url = f"https://127.0.0.1:{runner.addresses[0][1]}/api/oicp"
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
async def cpo_server(dev_pki: DevPki) -> AsyncIterator[CpoServer]:
    """A CPO server with the dev PKI's server certificate, demanding a client certificate."""
    async for server in run_cpo(CpoServer(), dev_pki.server_cert, dev_pki.server_key,
                                dev_pki.ca_cert):
        yield server


async def test_remote_start_gets_the_cpo_acknowledgement(
    hubject_simulator: Simulator, cpo_server: CpoServer, dev_pki: DevPki
) -> None:
    async with hubject_simulator.emp(cpo_server.url, ca=dev_pki.ca_cert,
                                     provider_id="DE-8EO") as emp:
        ack = await emp.remote_start(EVSE_ID, payloads.EVCO_ID)
    assert ack.result is True
    assert ack.status_code.code == "000"
    session_id = emp.last_session_id
    assert ack.session_id == session_id
    [(path, body, client)] = cpo_server.received
    assert path == "/api/oicp/charging/v21/providers/DE-8EO/authorize-remote/start"
    assert body["Identification"] == {"RemoteIdentification": {"EvcoID": payloads.EVCO_ID}}
    assert body["EvseID"] == EVSE_ID
    assert client == "Hubject", "the CPO saw the simulator's Hubject client certificate"
    # Hubject created the session: its CDR is now one the simulator knows.
    assert session_id in hubject_simulator.state.sessions
    assert hubject_simulator.state.sessions[session_id].origin == "remote-start"


async def test_remote_stop_and_reservations(hubject_simulator: Simulator, cpo_server: CpoServer,
                                            dev_pki: DevPki) -> None:
    async with hubject_simulator.emp(cpo_server.url, ca=dev_pki.ca_cert) as emp:
        stop = await emp.remote_stop(payloads.SESSION_ID, EVSE_ID)
        reserve = await emp.reservation_start(EVSE_ID, payloads.EVCO_ID, duration_minutes=15)
        assert emp.last_session_id is not None
        unreserve = await emp.reservation_stop(emp.last_session_id, EVSE_ID)
    assert [a.result for a in (stop, reserve, unreserve)] == [True, True, True]
    assert [p.rsplit("/", 1)[-1] for p, _, _ in cpo_server.received] == [
        "stop", "reservation-start-request", "reservation-stop-request"]
    assert cpo_server.received[1][1]["Duration"] == 15
    assert [e.operation for e in emp.exchanges] == [
        "AuthorizeRemoteStop", "AuthorizeRemoteReservationStart",
        "AuthorizeRemoteReservationStop"]


async def test_an_error_status_from_the_cpo_is_raised(
    hubject_simulator: Simulator, cpo_server: CpoServer, dev_pki: DevPki
) -> None:
    cpo_server.http_status = 500
    async with hubject_simulator.emp(cpo_server.url, ca=dev_pki.ca_cert) as emp:
        with pytest.raises(EmpCallError, match="HTTP 500") as caught:
            await emp.remote_start(EVSE_ID, payloads.EVCO_ID)
    assert caught.value.http_status == 500
    assert hubject_simulator.state.sessions == {}


async def test_a_cpo_server_certificate_from_another_ca_is_refused(
    hubject_simulator: Simulator, dev_pki: DevPki
) -> None:
    async for server in run_cpo(CpoServer(), dev_pki.other_server_cert,
                                dev_pki.other_server_key, dev_pki.ca_cert):
        async with hubject_simulator.emp(server.url, ca=dev_pki.ca_cert) as emp:
            with pytest.raises(EmpCallError, match="certificate"):
                await emp.remote_start(EVSE_ID, payloads.EVCO_ID)
        assert server.received == []
