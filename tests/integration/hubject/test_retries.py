"""What is repeated and what is not, against the simulator's scripted faults."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from hubject_connector.certs import DevPki
from hubject_connector.config import RetryConfig
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.hubject.errors import (
    ConnectionFailed,
    ConnectionLost,
    HttpStatusError,
    OicpStatusError,
    RequestTimeout,
)
from hubject_connector.oicp.authorization import AuthorizationStart
from hubject_connector.simulator import Simulator

from .conftest import authorize_start, client_config, status_push


def retries(registry: CollectorRegistry, operation: str, reason: str) -> float:
    value = registry.get_sample_value(
        "hubject_connector_hubject_retries_total", {"operation": operation, "reason": reason})
    return value or 0.0


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (lambda s: s.faults.http_503(2), "http_503"),
        (lambda s: s.faults.result_false(2, code="021"), "oicp_021"),
        (lambda s: s.faults.result_false(2, code="320"), "oicp_320"),
        (lambda s: s.faults.drop_connection(2), "connection_lost"),
    ],
    ids=["http-503", "oicp-021", "oicp-320", "dropped-connection"],
)
async def test_transient_failures_are_retried_then_succeed(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry,
    script: object, reason: str,
) -> None:
    script(simulator)  # type: ignore[operator]
    async with HubjectClient(client_config(dev_pki, simulator), registry=registry) as client:
        answer = await client.call("PushEvseStatus", status_push())
    assert answer.result
    assert len(simulator.requests_of("PushEvseStatus")) == 3
    assert retries(registry, "PushEvseStatus", reason) == 2


async def test_retry_after_of_a_429_is_honoured(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    simulator.faults.http_429(1, retry_after=1)
    retry = RetryConfig(attempts=3, initial_delay_seconds=0.01, max_delay_seconds=5.0)
    config = client_config(dev_pki, simulator, retry=retry)
    with capture_logs() as logs:
        async with HubjectClient(config, registry=registry) as client:
            answer = await client.call("PushEvseStatus", status_push())
    assert answer.result
    first, second = simulator.requests_of("PushEvseStatus")
    assert first.http_status == 429
    assert second.http_status == 200
    # The backoff alone would be at most 0.01 s; the server asked for a second.
    waits = [e["delay_seconds"] for e in logs if e["event"] == "repeating request to Hubject"]
    assert waits == [1.0]
    # ... and really waited it: the repeat reached the server a second after the 429 left.
    # (A lower bound only; asyncio may wake a timer up to its clock resolution early.)
    assert first.ended is not None
    assert second.started - first.ended >= 1.0 - 0.01
    assert retries(registry, "PushEvseStatus", "http_429") == 1


async def test_a_retry_after_beyond_the_cap_is_handed_to_the_caller(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    # Waiting a long Retry-After inside a call would block the caller; the error carries
    # it so that a queue can schedule the message later.
    simulator.faults.http_429(1, retry_after=120)
    async with HubjectClient(client_config(dev_pki, simulator), registry=registry) as client:
        with pytest.raises(HttpStatusError) as raised:
            await client.call("PushEvseStatus", status_push())
    assert raised.value.status == 429
    assert raised.value.retry_after == 120
    assert raised.value.transient
    assert len(simulator.requests_of("PushEvseStatus")) == 1


@pytest.mark.parametrize("code", ["017", "018", "022", "400"])
async def test_permanent_codes_are_not_retried(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry, code: str
) -> None:
    simulator.faults.result_false(1, code=code)
    async with HubjectClient(client_config(dev_pki, simulator), registry=registry) as client:
        with pytest.raises(OicpStatusError) as raised:
            await client.call("PushEvseStatus", status_push())
    error = raised.value
    assert error.code == code
    assert not error.transient
    assert error.description
    assert error.answer is not None
    assert error.answer.result is False
    assert len(simulator.requests_of("PushEvseStatus")) == 1
    assert registry.get_sample_value("hubject_connector_hubject_retries_total",
                                     {"operation": "PushEvseStatus", "reason": f"oicp_{code}"}
                                     ) is None


async def test_retries_stop_at_the_configured_attempts(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    simulator.faults.http_503(10)
    async with HubjectClient(client_config(dev_pki, simulator), registry=registry) as client:
        with pytest.raises(HttpStatusError) as raised:
            await client.call("PushEvseStatus", status_push())
    assert raised.value.status == 503
    assert raised.value.transient
    assert raised.value.attempts == 3
    assert "Service Unavailable" in raised.value.body_excerpt
    assert len(simulator.requests_of("PushEvseStatus")) == 3
    assert retries(registry, "PushEvseStatus", "http_503") == 2


async def test_a_transient_code_that_persists_is_raised_as_transient(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    simulator.faults.result_false(5, code="001")
    async with HubjectClient(client_config(dev_pki, simulator), registry=registry) as client:
        with pytest.raises(OicpStatusError) as raised:
            await client.call("PushEvseStatus", status_push())
    assert raised.value.code == "001"
    assert raised.value.transient
    assert raised.value.attempts == 3
    assert len(simulator.requests_of("PushEvseStatus")) == 3


async def test_authorize_start_is_not_repeated_after_an_ambiguous_timeout(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    held = simulator.faults.hold(operation="AuthorizeStart")
    config = client_config(dev_pki, simulator, timeout_seconds=0.5)
    async with HubjectClient(config, registry=registry) as client:
        with pytest.raises(RequestTimeout) as raised:
            await client.call("AuthorizeStart", authorize_start())
        # The call is over: a repeat would already have been sent.
        assert len(simulator.requests_of("AuthorizeStart")) == 1
        assert raised.value.sent is None
        assert raised.value.attempts == 1
        held.release()
        await simulator.wait_for_requests(1, operation="AuthorizeStart")
        # The same client still works once Hubject answers in time.
        answer = await client.call("AuthorizeStart", authorize_start())
    assert isinstance(answer, AuthorizationStart)
    assert answer.authorized
    assert len(simulator.requests_of("AuthorizeStart")) == 2
    assert registry.get_sample_value(
        "hubject_connector_hubject_retries_total",
        {"operation": "AuthorizeStart", "reason": "timeout"}) is None


async def test_a_push_is_repeated_after_a_timeout(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    # The contrast: repeating a push is harmless, so the same timeout is retried.
    simulator.faults.hold(operation="PushEvseStatus")
    config = client_config(dev_pki, simulator, timeout_seconds=0.5)
    async with HubjectClient(config, registry=registry) as client:
        answer = await client.call("PushEvseStatus", status_push())
    assert answer.result
    assert retries(registry, "PushEvseStatus", "timeout") == 1
    simulator.faults.release_all()


async def test_authorize_start_is_not_repeated_after_a_dropped_connection(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    simulator.faults.drop_connection(1, operation="AuthorizeStart", after_processing=True)
    async with HubjectClient(client_config(dev_pki, simulator), registry=registry) as client:
        with pytest.raises(ConnectionLost) as raised:
            await client.call("AuthorizeStart", authorize_start())
    assert raised.value.sent is None
    assert raised.value.attempts == 1
    assert len(simulator.requests_of("AuthorizeStart")) == 1


async def test_a_refused_connection_is_retried_even_for_authorize_start(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    # Nothing listens on this port: the request cannot have been sent.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = client_config(dev_pki, simulator, base_url=f"https://127.0.0.1:{port}/api/oicp")
    async with HubjectClient(config, registry=registry) as client:
        with pytest.raises(ConnectionFailed) as raised:
            await client.call("AuthorizeStart", authorize_start())
    assert raised.value.sent is False
    assert raised.value.attempts == 3
    assert retries(registry, "AuthorizeStart", "connection_failed") == 2
