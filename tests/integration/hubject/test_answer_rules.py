"""Answers from Hubject that break an OICP rule: a defined outcome, logged and counted.

A real mutual-TLS server on 127.0.0.1 plays Hubject and gives the answers the simulator
never gives: an Authorized answer without a SessionID, status codes outside the table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from hubject_connector.certs import DevPki
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.hubject.errors import OicpStatusError
from hubject_connector.oicp.authorization import AuthorizationStart, AuthorizationStatus
from hubject_connector.oicp.common import Acknowledgement
from hubject_connector.simulator.tls import server_context

from .conftest import OPERATOR_ID, authorize_start, client_config, status_push

SESSION_ID = "5e7c1a2b-0d3f-4a6e-9b8c-1f2e3d4c5b6a"
PATHS = {
    "AuthorizeStart": "/api/oicp/charging/v21/operators/{operator}/authorize/start",
    "PushEvseStatus": "/api/oicp/evsepush/v21/operators/{operator}/status-records",
}


class Hubject:
    """Answers every request with ``answer`` (a JSON object) and counts the calls."""

    def __init__(self) -> None:
        self.answer: dict[str, Any] = {}
        self.calls = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.calls += 1
        return web.json_response(self.answer)


@pytest.fixture
async def hubject(dev_pki: DevPki) -> AsyncIterator[Hubject]:
    server = Hubject()
    app = web.Application()
    for path in PATHS.values():
        app.router.add_post(path, server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context(
        dev_pki.server_cert, dev_pki.server_key, dev_pki.ca_cert))
    await site.start()
    server.url = f"https://127.0.0.1:{runner.addresses[0][1]}/api/oicp"
    yield server
    await runner.cleanup()


def _counted(registry: CollectorRegistry, operation: str, rule: str) -> float:
    value = registry.get_sample_value(
        "hubject_connector_hubject_protocol_errors_total",
        {"operation": operation, "rule": rule},
    )
    return value or 0.0


async def _call(pki: DevPki, hubject: Hubject, registry: CollectorRegistry,
                operation: str) -> Any:
    request = authorize_start() if operation == "AuthorizeStart" else status_push()
    async with HubjectClient(client_config(pki, hubject.url), registry=registry) as client:
        return await client.call(operation, request, operator_id=OPERATOR_ID)


async def test_authorized_without_session_id_is_not_authorized(
    dev_pki: DevPki, hubject: Hubject, registry: CollectorRegistry
) -> None:
    hubject.answer = {
        "AuthorizationStatus": "Authorized",
        "ProviderID": "DE-XYZ",
        "StatusCode": {"Code": "000", "Description": "Success"},
    }
    with capture_logs() as logs:
        answer = await _call(dev_pki, hubject, registry, "AuthorizeStart")
    assert isinstance(answer, AuthorizationStart)
    # The charge point is told no: a session without a SessionID could never be billed.
    assert answer.authorization_status is AuthorizationStatus.NOT_AUTHORIZED
    assert answer.status_code.code == "000"
    assert answer.status_code.additional_info is not None
    assert "without a SessionID" in answer.status_code.additional_info
    assert _counted(registry, "AuthorizeStart", "answer-authorized-without-session-id") == 1
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [(e["event"], e["rule"]) for e in warnings] == [
        ("answer from Hubject breaks an OICP rule", "answer-authorized-without-session-id")
    ]
    assert hubject.calls == 1


async def test_authorized_with_session_id_is_left_alone(
    dev_pki: DevPki, hubject: Hubject, registry: CollectorRegistry
) -> None:
    hubject.answer = {
        "AuthorizationStatus": "Authorized",
        "SessionID": SESSION_ID,
        "StatusCode": {"Code": "000"},
    }
    answer = await _call(dev_pki, hubject, registry, "AuthorizeStart")
    assert answer.authorized
    assert answer.session_id == SESSION_ID
    assert _counted(registry, "AuthorizeStart", "answer-authorized-without-session-id") == 0


async def test_an_unknown_status_code_with_result_true_is_passed_on_and_counted(
    dev_pki: DevPki, hubject: Hubject, registry: CollectorRegistry
) -> None:
    hubject.answer = {"Result": True, "StatusCode": {"Code": "777", "Description": "New"}}
    with capture_logs() as logs:
        answer = await _call(dev_pki, hubject, registry, "PushEvseStatus")
    # Result true: Hubject performed the operation, whatever the new code means.
    assert isinstance(answer, Acknowledgement)
    assert (answer.result, answer.status_code.code) == (True, "777")
    assert _counted(registry, "PushEvseStatus", "answer-unknown-status-code") == 1
    assert [e["outcome"] for e in logs if e["log_level"] == "warning"] == [
        "status code 777 is not in the OICP 2.3 table: passed on as it is"
    ]


async def test_an_unknown_status_code_with_result_false_is_a_refusal_with_that_code(
    dev_pki: DevPki, hubject: Hubject, registry: CollectorRegistry
) -> None:
    hubject.answer = {"Result": False, "StatusCode": {"Code": "777", "Description": "New"}}
    with pytest.raises(OicpStatusError) as caught:
        await _call(dev_pki, hubject, registry, "PushEvseStatus")
    assert caught.value.code == "777"
    assert not caught.value.transient
    assert _counted(registry, "PushEvseStatus", "answer-unknown-status-code") == 1
    # Not repeated: an unknown code is not known to be transient.
    assert hubject.calls == 1


async def test_an_unknown_status_code_in_an_authorization_is_passed_on(
    dev_pki: DevPki, hubject: Hubject, registry: CollectorRegistry
) -> None:
    hubject.answer = {"AuthorizationStatus": "NotAuthorized", "StatusCode": {"Code": "888"}}
    answer = await _call(dev_pki, hubject, registry, "AuthorizeStart")
    assert (answer.authorization_status, answer.status_code.code) == (
        AuthorizationStatus.NOT_AUTHORIZED, "888"
    )
    assert _counted(registry, "AuthorizeStart", "answer-unknown-status-code") == 1

