"""The inbound server (what Hubject calls) under oversized bodies and slowloris clients.

Dozens of clients at once hold connections open the slow way: TCP without a TLS
handshake, headers a byte at a time, a body that trickles, a Content-Length far over the
limit, an endless chunked body, a complete body over the limit. Each must be cut off (a
413 where the size is known, otherwise the connection closed by the server) and none may
reach the backend, while Hubject's own remote start, sent in the middle of it all, is
answered with the backend's reply, and the backend receives that one command only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable, Coroutine
from typing import Any, Final

import pytest

from hubject_connector.certs import DevPki
from tests.integration.inbound.conftest import (
    START_PATH,
    StackFactory,
    client_context,
    embedded_stacks,
    post,
    remote_start_body,
)

pytestmark = pytest.mark.slow

__all__ = ["embedded_stacks"]

#: Upper bound of how long one abusive client keeps at it before the test gives up on it.
ABUSE_WAIT: Final = 20.0
#: The server's limits in this test.
READ_TIMEOUT: Final = 1.0
MAX_BODY: Final = 4096
#: Abusive clients of each kind, all at the same time.
EACH: Final = 8

Abuse = Callable[[int, ssl.SSLContext], Coroutine[Any, Any, bytes]]
REQUEST_LINE: Final = ("POST /api/oicp" + START_PATH.format(provider="DE-8PS")
                       + " HTTP/1.1\r\nHost: 127.0.0.1\r\n").encode()


def hubject(pki: DevPki) -> ssl.SSLContext:
    """The client context Hubject's certificate gives."""
    return client_context(pki, pki.hubject_client_cert, pki.hubject_client_key)


async def _until_cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     drip: bytes | None, every: float = 0.05) -> bytes:
    """Send ``drip`` again and again (None: nothing) until the server ends the connection;
    everything the server sent."""
    received = bytearray()

    async def read_all() -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while chunk := await reader.read(65536):
                received.extend(chunk)

    reading = asyncio.create_task(read_all())
    try:
        async with asyncio.timeout(ABUSE_WAIT):
            while not reading.done():
                if drip is not None:
                    try:
                        writer.write(drip)
                        await writer.drain()
                    except (ConnectionError, ssl.SSLError, RuntimeError):
                        break
                await asyncio.wait({reading}, timeout=every)
            await reading
    except TimeoutError:
        raise AssertionError(f"the server kept a slow client ({drip!r}) for "
                             f"{ABUSE_WAIT} s") from None
    finally:
        reading.cancel()
        writer.close()
    return bytes(received)


async def no_handshake(port: int, context: ssl.SSLContext) -> bytes:
    """TCP, then nothing: no TLS ClientHello ever."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return await _until_cut(reader, writer, None)


async def slow_headers(port: int, context: ssl.SSLContext) -> bytes:
    """A request line, then header bytes one at a time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(REQUEST_LINE)
    return await _until_cut(reader, writer, b"X")


async def slow_body(port: int, context: ssl.SSLContext) -> bytes:
    """Headers announcing a small body, which then comes a byte at a time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(REQUEST_LINE + b"Content-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{")
    return await _until_cut(reader, writer, b" ")


async def huge_length(port: int, context: ssl.SSLContext) -> bytes:
    """A Content-Length of 100 MB, and the body trickling."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(REQUEST_LINE + b"Content-Type: application/json\r\n"
                 b"Content-Length: 100000000\r\n\r\n")
    return await _until_cut(reader, writer, b"x" * 512)


async def endless_chunks(port: int, context: ssl.SSLContext) -> bytes:
    """A chunked body that never ends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(REQUEST_LINE + b"Content-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    return await _until_cut(reader, writer, b"400\r\n" + b"x" * 1024 + b"\r\n", every=0.01)


async def whole_big_body(port: int, context: ssl.SSLContext) -> bytes:
    """A complete, well-formed request whose body is over the limit."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    body = json.dumps(remote_start_body(EMPPartnerSessionID="x" * (4 * MAX_BODY))).encode()
    writer.write(REQUEST_LINE + b"Content-Type: application/json\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    return await _until_cut(reader, writer, None)


ABUSES: Final[dict[str, Abuse]] = {
    "no_handshake": no_handshake,
    "slow_headers": slow_headers,
    "slow_body": slow_body,
    "huge_length": huge_length,
    "endless_chunks": endless_chunks,
    "whole_big_body": whole_big_body,
}


async def test_slow_and_oversized_clients_are_cut_off_while_hubject_is_answered(
    embedded_stacks: StackFactory, dev_pki: DevPki,
) -> None:
    stack = await embedded_stacks.start(read_timeout_seconds=READ_TIMEOUT,
                                        max_body_bytes=MAX_BODY)
    context = hubject(dev_pki)
    port = stack.server.port
    url = stack.server.url + START_PATH.format(provider="DE-8PS")
    abusers = {name: [asyncio.create_task(abuse(port, context)) for _ in range(EACH)]
               for name, abuse in ABUSES.items()}

    # Hubject's call, among them all.
    body = remote_start_body()
    status, answer = await post(url, body, context=context)
    assert (status, answer["Result"], answer["SessionID"]) == (200, True, body["SessionID"])

    answers = {name: await asyncio.gather(*tasks) for name, tasks in abusers.items()}
    # Where the size is known before the body is read, the client is told so.
    for name in ("huge_length", "whole_big_body", "endless_chunks"):
        assert all(a.startswith(b"HTTP/1.1 413") for a in answers[name]), (name, answers[name])
    # A slow body gets 408 (request timeout) or just the end of the connection.
    assert all(a == b"" or a.startswith(b"HTTP/1.1 408") for a in answers["slow_body"])
    assert answers["no_handshake"] == [b""] * EACH
    assert answers["slow_headers"] == [b""] * EACH
    # None of them reached the backend: its one command is Hubject's.
    assert [c["data"]["session_id"] for c in stack.backend.commands] == [body["SessionID"]]

    # And the server still answers afterwards.
    again = remote_start_body()
    status, answer = await post(url, again, context=context)
    assert (status, answer["Result"]) == (200, True)
