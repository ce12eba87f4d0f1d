"""Who gets in: client certificates in each mode, the source-IP allow list, the proxy header,
and the server certificate, rotated without a restart.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import urllib.parse
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from hubject_connector import certs
from hubject_connector.bus.base import Bus
from hubject_connector.bus.factory import build_bus
from hubject_connector.certs import DevPki
from hubject_connector.config import BusConfig, Config, EmbeddedBusConfig
from hubject_connector.errors import ConfigError
from hubject_connector.inbound import InboundServer
from hubject_connector.simulator import EmpCallError, Simulator
from tests.integration.inbound.conftest import (
    EVCO_ID,
    EVSE_ID,
    START_PATH,
    StackFactory,
    client_context,
    eventually,
    inbound_settings,
    post,
    remote_start_body,
)

REFUSED = "hubject_connector_inbound_refused_connections_total"
REFUSED_REQUESTS = "hubject_connector_inbound_refused_requests_total"


def start_url(base: str) -> str:
    """The remote start URL under ``base`` for ProviderID DE-8PS."""
    return base + START_PATH.format(provider="DE-8PS")


async def test_a_client_without_a_certificate_is_refused_at_the_handshake(
    embedded_stacks: StackFactory, dev_pki: DevPki
) -> None:
    stack = await embedded_stacks.start()
    with pytest.raises(aiohttp.ClientError):
        await post(start_url(stack.server.url), remote_start_body(),
                   context=client_context(dev_pki))
    await eventually(lambda: stack.metric(REFUSED, reason="no_client_certificate") == 1,
                     "the refusal counted")
    assert stack.backend.commands == []


async def test_a_client_certificate_from_another_ca_is_refused(
    embedded_stacks: StackFactory, dev_pki: DevPki
) -> None:
    stack = await embedded_stacks.start()
    context = client_context(dev_pki, dev_pki.other_client_cert, dev_pki.other_client_key)
    with pytest.raises(aiohttp.ClientError):
        await post(start_url(stack.server.url), remote_start_body(), context=context)
    await eventually(
        lambda: stack.metric(REFUSED, reason="untrusted_client_certificate") == 1,
        "the refusal counted",
    )
    assert stack.backend.commands == []


async def test_an_expired_client_certificate_is_refused(
    embedded_stacks: StackFactory, dev_pki: DevPki
) -> None:
    stack = await embedded_stacks.start()
    context = client_context(dev_pki, dev_pki.expired_client_cert, dev_pki.expired_client_key)
    with pytest.raises(aiohttp.ClientError):
        await post(start_url(stack.server.url), remote_start_body(), context=context)
    await eventually(
        lambda: stack.metric(REFUSED, reason="untrusted_client_certificate") == 1,
        "the refusal counted",
    )


async def test_optional_mode_lets_a_client_without_certificate_in_but_not_a_wrong_one(
    embedded_stacks: StackFactory, dev_pki: DevPki
) -> None:
    stack = await embedded_stacks.start(client_cert_mode="optional")
    status, answer = await post(start_url(stack.server.url), remote_start_body(),
                                context=client_context(dev_pki))
    assert (status, answer["Result"], answer["StatusCode"]["Code"]) == (200, True, "000")

    wrong = client_context(dev_pki, dev_pki.other_client_cert, dev_pki.other_client_key)
    with pytest.raises(aiohttp.ClientError):
        await post(start_url(stack.server.url), remote_start_body(), context=wrong)
    assert len(stack.backend.commands) == 1


async def test_plain_tls_asks_for_no_client_certificate(
    embedded_stacks: StackFactory, dev_pki: DevPki
) -> None:
    stack = await embedded_stacks.start(client_cert_mode="off", client_ca=None)
    status, answer = await post(start_url(stack.server.url), remote_start_body(),
                                context=client_context(dev_pki))
    assert (status, answer["Result"]) == (200, True)


async def test_a_source_address_outside_the_allow_list_is_refused(
    embedded_stacks: StackFactory, simulator: Simulator, dev_pki: DevPki
) -> None:
    stack = await embedded_stacks.start(allow_ips=("10.0.0.0/8", "192.0.2.7"))
    async with simulator.emp(stack.server.url, ca=dev_pki.ca_cert, provider_id="DE-8PS") as emp:
        with pytest.raises(EmpCallError) as refused:
            await emp.remote_start(EVSE_ID, EVCO_ID)
    assert refused.value.http_status == 403
    assert b'"Result":false' in refused.value.body
    assert b'"Code":"017"' in refused.value.body
    assert stack.backend.commands == []
    assert stack.metric(REFUSED_REQUESTS, reason="ip_not_allowed") == 1


def escaped_pem(path: Path) -> str:
    """A certificate file as a proxy passes it: URL-encoded PEM."""
    return urllib.parse.quote(path.read_text())


async def test_behind_a_proxy_the_client_certificate_header_is_required_and_verified(
    embedded_stacks: StackFactory, dev_pki: DevPki
) -> None:
    header = "X-SSL-Client-Cert"
    stack = await embedded_stacks.start(client_cert_mode="off", tls_cert=None, tls_key=None,
                                        client_cert_header=header)
    url = start_url(stack.server.url)
    assert url.startswith("http://")

    status, answer = await post(url, remote_start_body(), context=None)
    assert (status, answer["StatusCode"]["Code"]) == (403, "017")
    status, answer = await post(url, remote_start_body(), context=None,
                                headers={header: escaped_pem(dev_pki.other_client_cert)})
    assert (status, answer["StatusCode"]["Code"]) == (403, "017")
    status, answer = await post(url, remote_start_body(), context=None,
                                headers={header: "not a certificate"})
    assert status == 403

    status, answer = await post(url, remote_start_body(), context=None,
                                headers={header: escaped_pem(dev_pki.hubject_client_cert)})
    assert (status, answer["Result"], answer["StatusCode"]["Code"]) == (200, True, "000")
    assert len(stack.backend.commands) == 1
    assert stack.metric(REFUSED_REQUESTS, reason="client_certificate_header_missing") == 1
    assert stack.metric(REFUSED_REQUESTS, reason="client_certificate_header_invalid") == 2


async def served_certificate(port: int, pki: DevPki) -> bytes:
    """The DER of the certificate the server presents to a new connection."""
    context = client_context(pki, pki.hubject_client_cert, pki.hubject_client_key)
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject)
        der = ssl_object.getpeercert(binary_form=True)
        assert der is not None
        return der
    finally:
        writer.close()
        await writer.wait_closed()


def issue_server_certificate(pki: DevPki, cert_path: Path, key_path: Path,
                             *, key_path_to_keep: Path | None = None) -> None:
    """A new server certificate for 127.0.0.1 from the dev CA, written over the files."""
    ca_cert = certs.load_certificate(pki.ca_cert)
    ca_key = certs.load_private_key(pki.ca_key)
    key = certs.new_key("ec")
    cert = certs.issue_certificate(certs.name("localhost"), key, usage="server",
                                   issuer_cert=ca_cert, issuer_key=ca_key,
                                   sans=("localhost", "127.0.0.1"))
    certs.write_public(cert_path, certs.cert_pem(cert))
    if key_path_to_keep is None:
        certs.write_private(key_path, certs.key_pem(key))


async def test_a_rotated_server_certificate_reaches_new_connections_without_a_restart(
    embedded_stacks: StackFactory, dev_pki: DevPki, tmp_path: Path
) -> None:
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    shutil.copy(dev_pki.server_cert, cert)
    shutil.copy(dev_pki.server_key, key)
    stack = await embedded_stacks.start(tls_cert=cert, tls_key=key,
                                        cert_reload_interval_seconds=0.001)
    first = await served_certificate(stack.server.port, dev_pki)

    issue_server_certificate(dev_pki, cert, key)
    rotated = await served_certificate(stack.server.port, dev_pki)
    assert rotated != first
    assert rotated == ssl.PEM_cert_to_DER_cert(cert.read_text())

    # Half a rotation: a new certificate without its key. The last good pair stays.
    issue_server_certificate(dev_pki, cert, key, key_path_to_keep=key)
    assert await served_certificate(stack.server.port, dev_pki) == rotated
    assert stack.metric("hubject_connector_inbound_server_certificate_reloads_total",
                        result="error") >= 1
    assert stack.server.ready


def unconnected_bus(tmp_path: Path) -> Bus:
    """A bus never connected: the server fails before it would use it."""
    return build_bus(BusConfig(embedded=EmbeddedBusConfig(path=tmp_path / "bus.sqlite3")))


@pytest.mark.parametrize(
    ("setting", "broken"),
    [("inbound.tls_cert", "tls_cert"), ("inbound.tls_key", "tls_key"),
     ("inbound.client_ca", "client_ca")],
)
async def test_an_unusable_certificate_file_fails_the_start_naming_setting_and_file(
    dev_pki: DevPki, tmp_path: Path, setting: str, broken: str
) -> None:
    missing = tmp_path / "missing.pem"
    config = Config(inbound=inbound_settings(dev_pki, **{broken: missing}))
    server = InboundServer(config, bus=unconnected_bus(tmp_path), registry=CollectorRegistry())
    with pytest.raises(ConfigError) as failed:
        await server.start()
    assert setting in str(failed.value)
    assert str(missing) in str(failed.value)
    assert not server.ready


async def test_a_key_of_another_certificate_fails_the_start(
    dev_pki: DevPki, tmp_path: Path
) -> None:
    config = Config(inbound=inbound_settings(dev_pki, tls_key=dev_pki.other_server_key))
    server = InboundServer(config, bus=unconnected_bus(tmp_path), registry=CollectorRegistry())
    with pytest.raises(ConfigError, match=r"inbound\.tls_key: .* does not belong"):
        await server.start()
