"""No plaintext path to Hubject, no followed redirect, no doomed connection, and a
certificate refused after a TLS 1.3 handshake named for what it is, over a real link."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from hubject_connector import certs
from hubject_connector.certs import CertificateError, DevPki
from hubject_connector.errors import ConfigError
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.hubject.errors import (
    ClientCertificateExpired,
    ClientCertificateRejected,
    InvalidAnswerError,
    RedirectRefused,
)
from hubject_connector.hubject.tls import ClientTls
from hubject_connector.oicp import codec
from hubject_connector.oicp.evse import PushEvseStatus
from hubject_connector.simulator import Simulator, SimulatorConfig

from .conftest import authorize_start, client_config, status_push
from .links import ConnectionCounter, DelayingRelay, StdlibTlsServer, http_server

ACK = {"Result": True, "StatusCode": {"Code": "000"}}


def server_context(pki: DevPki) -> ssl.SSLContext:
    """What a Hubject front end does: its certificate, our certificate required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.load_verify_locations(pki.ca_cert)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


async def test_a_redirect_is_not_followed_and_names_its_target(
    dev_pki: DevPki, registry: CollectorRegistry
) -> None:
    async def capture(_request: web.Request) -> web.StreamResponse:
        return web.json_response(ACK)

    async with http_server(capture) as (elsewhere, reposted):
        target = f"{elsewhere}/capture?user=x"

        async def redirect(_request: web.Request) -> web.StreamResponse:
            return web.Response(status=307, headers={"Location": target})

        async with http_server(redirect, ssl_context=server_context(dev_pki)) as (url, seen):
            config = client_config(dev_pki, f"{url}/api/oicp")
            async with HubjectClient(config, registry=registry) as client:
                with pytest.raises(RedirectRefused) as raised:
                    await client.call("PushEvseStatus", status_push())
    # Nothing was posted again, in clear text or otherwise, and nothing was repeated.
    assert reposted == []
    assert len(seen) == 1
    error = raised.value
    assert error.location == target
    assert target in str(error)
    assert "307" in str(error)
    assert "never followed" in str(error)
    assert error.attempts == 1
    assert registry.get_sample_value(
        "hubject_connector_hubject_requests_total",
        {"operation": "PushEvseStatus", "http_status": "307", "oicp_status": "none"}) == 1


async def test_a_plain_http_base_url_is_refused_before_anything_is_sent(
    dev_pki: DevPki, registry: CollectorRegistry
) -> None:
    async def answer(_request: web.Request) -> web.StreamResponse:
        return web.json_response(ACK)

    async with http_server(answer) as (url, seen):
        config = client_config(dev_pki, f"{url}/api/oicp")
        with pytest.raises(ConfigError) as raised:
            async with HubjectClient(config, registry=registry) as client:
                await client.call("PushEvseStatus", status_push())
        production = client_config(dev_pki, f"{url}/api/oicp", insecure_plaintext=True,
                                   environment="production")
        with pytest.raises(ConfigError) as refused:
            async with HubjectClient(production, registry=registry) as client:
                await client.call("PushEvseStatus", status_push())
    assert raised.value.key == "hubject.base_url"
    assert "plain http" in str(raised.value)
    assert refused.value.key == "hubject.insecure_plaintext"
    assert seen == []


async def test_plain_http_only_when_allowed_and_then_loudly(
    dev_pki: DevPki, registry: CollectorRegistry
) -> None:
    async def answer(_request: web.Request) -> web.StreamResponse:
        return web.json_response(ACK)

    async with http_server(answer) as (url, seen):
        # A local test proxy: no certificates needed, none loaded.
        config = client_config(dev_pki, f"{url}/api/oicp", insecure_plaintext=True,
                               client_cert=None, client_key=None, ca_bundle=None)
        with capture_logs() as logs:
            async with HubjectClient(config, registry=registry) as client:
                answer_model = await client.call("PushEvseStatus", status_push())
    assert answer_model.result
    assert len(seen) == 1
    loud = [e for e in logs if e["event"].startswith("INSECURE")]
    assert [e["log_level"] for e in loud] == ["warning"]


async def test_an_expired_or_missing_client_certificate_is_refused_without_connecting(
    dev_pki: DevPki, registry: CollectorRegistry
) -> None:
    async with ConnectionCounter() as listener:
        url = f"https://localhost:{listener.port}/api/oicp"
        expired = client_config(dev_pki, url, client_cert=dev_pki.expired_client_cert,
                                client_key=dev_pki.expired_client_key)
        with pytest.raises(CertificateError) as raised:
            async with HubjectClient(expired, registry=registry) as client:
                await client.call("PushEvseStatus", status_push())
        missing = client_config(dev_pki, url, client_cert=None, client_key=None)
        with pytest.raises(ConfigError) as absent:
            async with HubjectClient(missing, registry=registry) as client:
                await client.call("PushEvseStatus", status_push())
    assert listener.connections == 0
    # One line each, naming the setting (and the file).
    assert raised.value.key == "hubject.client_cert"
    assert str(dev_pki.expired_client_cert) in str(raised.value)
    assert "expired" in str(raised.value)
    assert absent.value.key == "hubject.client_cert"
    assert "no client certificate" in str(absent.value)
    assert "\n" not in str(raised.value) + str(absent.value)


async def test_a_certificate_that_expires_while_running_is_not_presented(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry, tmp_path: Path
) -> None:
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "c.key"
    issued = certs.issue_client_certificate(dev_pki, cert_path, key_path, valid_days=2)
    config = client_config(dev_pki, simulator, client_cert=cert_path, client_key=key_path)
    wall = [dt.datetime.now(dt.UTC)]
    tls = ClientTls(config, now=lambda: wall[0])
    async with HubjectClient(config, registry=registry, tls=tls) as client:
        assert (await client.call("PushEvseStatus", status_push())).result
        wall[0] = issued.not_valid_after_utc + dt.timedelta(seconds=1)
        with pytest.raises(ClientCertificateExpired) as raised:
            await client.call("AuthorizeStart", authorize_start())
    assert raised.value.sent is False
    assert raised.value.attempts == 1
    assert str(cert_path) in str(raised.value) or "expired at" in str(raised.value)
    assert [r.operation for r in simulator.requests] == ["PushEvseStatus"]


@pytest.mark.parametrize("operation", ["PushEvseStatus", "AuthorizeStart"])
@pytest.mark.parametrize("server", ["asyncio-silent-close", "openssl-alert"])
async def test_a_certificate_refused_after_a_tls13_handshake_is_named_not_repeated(
    dev_pki: DevPki, simulator_config: SimulatorConfig, registry: CollectorRegistry,
    operation: str, server: str,
) -> None:
    # The server trusts another CA than the one that issued our certificate. Under TLS 1.3
    # it says so after the handshake, when our request is already on its way: 30 ms each
    # way put the refusal behind the request, as on any real link.
    request = status_push() if operation == "PushEvseStatus" else authorize_start()
    if server == "openssl-alert":
        with StdlibTlsServer(dev_pki.server_cert, dev_pki.server_key,
                             dev_pki.other_ca_cert) as tls_server:
            async with DelayingRelay(tls_server.port) as relay:
                error = await _refused_call(dev_pki, relay, registry, operation, request)
            received = tls_server.handshakes
    else:
        config = simulator_config.replace(client_ca=dev_pki.other_ca_cert)
        async with Simulator(config) as elsewhere:
            async with DelayingRelay(elsewhere.port) as relay:
                error = await _refused_call(dev_pki, relay, registry, operation, request)
            received = len(elsewhere.requests)
    assert received == 0
    assert isinstance(error, ClientCertificateRejected)
    assert "not issued by a CA the server trusts" in str(error)
    assert str(dev_pki.cpo_client_cert) in str(error)
    # Certainly not processed, so an AuthorizeStart may be asked again; and a refused
    # certificate is not hammered with retries.
    assert error.sent is False
    assert error.attempts == 1
    assert registry.get_sample_value(
        "hubject_connector_hubject_retries_total",
        {"operation": operation, "reason": "connection_lost"}) is None


async def _refused_call(
    pki: DevPki, relay: DelayingRelay, registry: CollectorRegistry, operation: str,
    request: object,
) -> BaseException:
    config = client_config(pki, f"https://localhost:{relay.port}/api/oicp")
    tls = ClientTls(config)
    tls.loaded.context.minimum_version = ssl.TLSVersion.TLSv1_3
    async with HubjectClient(config, registry=registry, tls=tls) as client:
        with pytest.raises(ClientCertificateRejected) as raised:
            await client.call(operation, request)
    return raised.value



async def test_an_endless_answer_is_not_read_into_memory(
    dev_pki: DevPki, registry: CollectorRegistry
) -> None:
    async def flood(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(64):  # 4 MiB, four times what any answer may be
                await response.write(b" " * 65536)
        return response

    async with http_server(flood, ssl_context=server_context(dev_pki)) as (url, seen):
        config = client_config(dev_pki, f"{url}/api/oicp")
        async with HubjectClient(config, registry=registry) as client:
            with pytest.raises(InvalidAnswerError) as raised:
                await client.call("PushEvseStatus", status_push())
    assert len(seen) == 1  # not repeated: the same request would get the same answer
    assert "larger than 1048576 bytes" in str(raised.value)


async def test_a_large_push_does_not_hold_up_a_small_call(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    # Writing 50,000 status records takes a while; an AuthorizeStart asked for meanwhile
    # goes out first instead of waiting on the event loop behind it.
    records = [{"EvseID": f"DE*ABC*E{i}*1", "EvseStatus": "Available"} for i in range(50_000)]
    push = codec.load(PushEvseStatus, {
        "ActionType": "fullLoad",
        "OperatorEvseStatus": {"OperatorID": "DE*ABC", "OperatorName": "ABC Charging",
                               "EvseStatusRecord": records},
    })
    async with HubjectClient(client_config(dev_pki, simulator), registry=registry) as client:
        pushing = asyncio.create_task(client.call("PushEvseStatus", push))
        authorizing = asyncio.create_task(client.call("AuthorizeStart", authorize_start()))
        await asyncio.gather(pushing, authorizing)
    assert [r.operation for r in simulator.requests] == ["AuthorizeStart", "PushEvseStatus"]
