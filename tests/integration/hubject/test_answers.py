"""Answers the simulator never gives: a real HTTPS server on 127.0.0.1 that misbehaves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from hubject_connector.certs import DevPki
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.hubject.errors import (
    HttpStatusError,
    InvalidAnswerError,
    OicpStatusError,
)
from hubject_connector.oicp.codec import OicpValidationError
from hubject_connector.simulator.tls import server_context

from .conftest import OPERATOR_ID, client_config, status_push

Answer = Callable[[web.Request], web.Response]
PATH = "/api/oicp/evsepush/v21/operators/{operator}/status-records"


class OddServer:
    """An mTLS server whose status-push route answers with ``answer``."""

    def __init__(self) -> None:
        self.answer: Answer = lambda _: web.Response(text="unset")
        self.calls = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.calls += 1
        return self.answer(request)


@pytest.fixture
async def odd_server(dev_pki: DevPki) -> AsyncIterator[OddServer]:
    server = OddServer()
    app = web.Application()
    app.router.add_post(PATH, server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context(
        dev_pki.server_cert, dev_pki.server_key, dev_pki.ca_cert))
    await site.start()
    server.url = f"https://127.0.0.1:{runner.addresses[0][1]}/api/oicp"
    yield server
    await runner.cleanup()


async def call(pki: DevPki, server: OddServer, registry: CollectorRegistry) -> object:
    config = client_config(pki, server.url)
    async with HubjectClient(config, registry=registry) as client:
        return await client.call("PushEvseStatus", status_push(), operator_id=OPERATOR_ID)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (b'{"Result": "maybe", "StatusCode": {"Code": "000"}}', "/Result"),
        (b'{"Result": true}', "/StatusCode"),
        (b"<html>hello</html>", ""),
        (b"[1, 2]", ""),
    ],
    ids=["wrong-type", "missing-status", "not-json", "not-an-object"],
)
async def test_a_malformed_answer_is_a_validation_error(
    dev_pki: DevPki, odd_server: OddServer, registry: CollectorRegistry,
    body: bytes, pointer: str,
) -> None:
    odd_server.answer = lambda _: web.Response(body=body, content_type="application/json")
    with pytest.raises(InvalidAnswerError) as raised:
        await call(dev_pki, odd_server, registry)
    assert isinstance(raised.value, OicpValidationError)
    assert raised.value.issues[0].pointer == pointer
    assert raised.value.operation == "PushEvseStatus"
    assert odd_server.calls == 1  # a malformed answer is not asked for again


async def test_an_http_error_page_is_retried_then_reported_with_an_excerpt(
    dev_pki: DevPki, odd_server: OddServer, registry: CollectorRegistry
) -> None:
    page = "<html>Bad gateway for card 04A1B2C3D4E5F6</html>" + "x" * 2000
    odd_server.answer = lambda _: web.Response(status=502, text=page)
    with pytest.raises(HttpStatusError) as raised:
        await call(dev_pki, odd_server, registry)
    error = raised.value
    assert error.status == 502
    assert error.attempts == 3
    assert odd_server.calls == 3
    assert error.body_excerpt.startswith("<html>Bad gateway")
    assert len(error.body_excerpt) <= 301
    # Identifiers in the body are masked wherever the excerpt goes.
    assert "04A1B2C3D4E5F6" not in str(error)


async def test_a_refusal_with_an_http_error_status_is_an_oicp_status_error(
    dev_pki: DevPki, odd_server: OddServer, registry: CollectorRegistry
) -> None:
    odd_server.answer = lambda _: web.json_response(
        {"Result": False, "StatusCode": {"Code": "017", "Description": "Unauthorized"}},
        status=403)
    with pytest.raises(OicpStatusError) as raised:
        await call(dev_pki, odd_server, registry)
    assert raised.value.code == "017"
    assert raised.value.http_status == 403
    assert odd_server.calls == 1
