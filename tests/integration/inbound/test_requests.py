"""What the server answers to requests that cannot become a command, and to slow clients.

Data errors are answered 200 with an OICP acknowledgement (Result false, 022, the field at
fault), never with a 5xx; paths, methods and sizes get OICP-shaped HTTP errors.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
import pytest

from hubject_connector.certs import DevPki
from tests.integration.inbound.conftest import (
    START_PATH,
    WAIT,
    Answer,
    StackFactory,
    accept,
    client_context,
    eventually,
    post,
    remote_start_body,
)


def hubject(pki: DevPki) -> Any:
    """The client context Hubject's certificate gives."""
    return client_context(pki, pki.hubject_client_cert, pki.hubject_client_key)


def start_url(base: str, provider: str = "DE-8PS") -> str:
    """The remote start URL for ``provider``."""
    return base + START_PATH.format(provider=provider)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (remote_start_body(EvseID="DE*ABC*X123"), "/EvseID"),
        (remote_start_body(ProviderID="DE-XYZ"), "/ProviderID"),
        ({k: v for k, v in remote_start_body().items() if k != "SessionID"}, "/SessionID"),
        (remote_start_body(Identification={"RFIDMifareFamilyIdentification": {"UID": "1234ABCD"}}),
         "Identification"),
        (b"{not json", "JSON"),
    ],
    ids=["evse-id", "provider-mismatch", "no-session-id", "not-remote", "not-json"],
)
async def test_an_invalid_request_gets_022_naming_the_field_and_reaches_no_backend(
    embedded_stacks: StackFactory, dev_pki: DevPki, body: dict[str, Any] | bytes, pointer: str
) -> None:
    stack = await embedded_stacks.start()
    status, answer = await post(start_url(stack.server.url), body, context=hubject(dev_pki))
    assert status == 200
    assert answer["Result"] is False
    assert answer["StatusCode"]["Code"] == "022"
    assert pointer in answer["StatusCode"]["AdditionalInfo"]
    assert stack.backend.commands == []


async def test_a_provider_id_in_the_path_that_is_no_provider_id_gets_022(
    embedded_stacks: StackFactory, dev_pki: DevPki
) -> None:
    stack = await embedded_stacks.start()
    status, answer = await post(start_url(stack.server.url, "not-a-provider"),
                                remote_start_body(), context=hubject(dev_pki))
    assert (status, answer["StatusCode"]["Code"]) == (200, "022")
    assert "providerID" in answer["StatusCode"]["AdditionalInfo"]


async def test_unknown_paths_and_other_methods_get_oicp_shaped_errors(
    embedded_stacks: StackFactory, dev_pki: DevPki
) -> None:
    stack = await embedded_stacks.start()
    context = hubject(dev_pki)
    status, answer = await post(stack.server.url + "/charging/v21/providers/DE-8PS/nothing",
                                remote_start_body(), context=context)
    assert (status, answer["Result"], answer["StatusCode"]["Code"]) == (404, False, "022")
    assert "authorize-remote/start" in answer["StatusCode"]["AdditionalInfo"]

    status, answer = await post(start_url(stack.server.url), b"", context=context,
                                method="GET")
    assert (status, answer["Result"]) == (405, False)
    assert stack.backend.commands == []


async def test_a_body_over_the_limit_gets_413(
    embedded_stacks: StackFactory, dev_pki: DevPki
) -> None:
    stack = await embedded_stacks.start(max_body_bytes=1024)
    padded = remote_start_body(EMPPartnerSessionID="x" * 2000)
    status, answer = await post(start_url(stack.server.url), padded, context=hubject(dev_pki))
    assert (status, answer["Result"]) == (413, False)

    async def chunks() -> Any:
        # Without Content-Length: the limit holds while the body streams in.
        data = json.dumps(padded).encode()
        for start in range(0, len(data), 256):
            yield data[start:start + 256]

    connector = aiohttp.TCPConnector(ssl=hubject(dev_pki))
    async with aiohttp.ClientSession(connector=connector) as session, session.post(
        start_url(stack.server.url), data=chunks(),
        headers={"Content-Type": "application/json"},
    ) as response:
        assert response.status == 413
    assert stack.backend.commands == []
    assert stack.metric("hubject_connector_inbound_refused_requests_total",
                        reason="body_too_large") == 2


async def test_a_client_that_trickles_its_headers_is_cut_off(
    embedded_stacks: StackFactory, dev_pki: DevPki
) -> None:
    stack = await embedded_stacks.start(read_timeout_seconds=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.server.port,
                                                   ssl=hubject(dev_pki))
    try:
        writer.write(b"POST /api/oicp" + START_PATH.format(provider="DE-8PS").encode()
                     + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        await writer.drain()
        async with asyncio.timeout(WAIT):
            try:
                rest = await reader.read()
            except ConnectionError:
                rest = b""
        assert rest == b""
    finally:
        writer.close()
    await eventually(lambda: stack.metric("hubject_connector_inbound_refused_connections_total",
                                          reason="read_timeout") == 1, "the cut-off counted")


async def test_a_client_that_trickles_its_body_gets_408_and_is_cut_off(
    embedded_stacks: StackFactory, dev_pki: DevPki
) -> None:
    stack = await embedded_stacks.start(read_timeout_seconds=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.server.port,
                                                   ssl=hubject(dev_pki))
    try:
        writer.write(b"POST /api/oicp" + START_PATH.format(provider="DE-8PS").encode()
                     + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"Sess")
        await writer.drain()
        async with asyncio.timeout(WAIT):
            answer = await reader.read()
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408")
    assert b'"Code":"022"' in answer
    assert stack.backend.commands == []


def slow(command: dict[str, Any]) -> Answer:
    """Carry out the command after half a second."""
    return Answer(accept(command).data, delay=0.5)


async def test_stopping_answers_the_request_in_flight_and_takes_no_new_one(
    embedded_stacks: StackFactory, dev_pki: DevPki
) -> None:
    stack = await embedded_stacks.start(slow)
    url = start_url(stack.server.url)
    session = str(uuid.uuid4())
    in_flight = asyncio.create_task(
        post(url, remote_start_body(SessionID=session), context=hubject(dev_pki))
    )
    await stack.backend.wait_for(lambda: bool(stack.backend.commands), "the command")
    await stack.server.stop(grace=WAIT)

    status, answer = await in_flight
    assert (status, answer["Result"], answer["SessionID"]) == (200, True, session)
    with pytest.raises(aiohttp.ClientError):
        await post(url, remote_start_body(), context=hubject(dev_pki))
    assert not stack.server.ready
