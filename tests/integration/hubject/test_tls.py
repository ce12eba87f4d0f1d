"""Real mutual-TLS handshakes against the simulator: who is refused, and how it reads."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from hubject_connector import certs
from hubject_connector.certs import DevPki
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.hubject.errors import (
    ClientCertificateRejected,
    OicpStatusError,
    ServerCertificateUntrusted,
)
from hubject_connector.hubject.tls import ClientTls
from hubject_connector.oicp.common import Acknowledgement
from hubject_connector.simulator import Simulator, SimulatorConfig

from .conftest import client_config, status_push


async def test_the_right_certificate_is_accepted(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    async with HubjectClient(client_config(dev_pki, simulator), registry=registry) as client:
        answer = await client.call("PushEvseStatus", status_push())
    assert isinstance(answer, Acknowledgement)
    assert answer.result
    assert answer.status_code.code == "000"
    seen = simulator.last_client_certificate
    assert seen is not None
    assert seen.common_name == "DE*ABC"
    assert seen.serial_number == certs.load_certificate(dev_pki.cpo_client_cert).serial_number
    assert simulator.requests_of("PushEvseStatus")[0].path_params == {"operatorID": "DE*ABC"}


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2],
                         ids=["tls1.3", "tls1.2"])
async def test_a_refused_client_certificate_fails_clearly(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry,
    version: ssl.TLSVersion,
) -> None:
    # TLS 1.3 servers check the client certificate after the client finished its side
    # of the handshake, TLS 1.2 servers within it: both must read the same. (An expired
    # or a missing certificate is refused before connecting: test_transport_hardening.)
    config = client_config(dev_pki, simulator, client_cert=dev_pki.other_client_cert,
                           client_key=dev_pki.other_client_key)
    tls = ClientTls(config)
    tls.loaded.context.maximum_version = version
    async with HubjectClient(config, registry=registry, tls=tls) as client:
        with pytest.raises(ClientCertificateRejected) as raised:
            await client.call("PushEvseStatus", status_push())
    assert "not issued by" in str(raised.value)
    assert raised.value.operation == "PushEvseStatus"
    # Refused in the handshake: the request never reached the platform, and a refused
    # certificate is not hammered with retries.
    assert raised.value.sent is False
    assert raised.value.attempts == 1
    assert simulator.requests == []


async def test_a_server_certificate_from_another_ca_is_refused(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    config = client_config(dev_pki, simulator, ca_bundle=dev_pki.other_ca_cert)
    async with HubjectClient(config, registry=registry) as client:
        with pytest.raises(ServerCertificateUntrusted) as raised:
            await client.call("PushEvseStatus", status_push())
    assert "not trusted" in str(raised.value)
    assert str(dev_pki.other_ca_cert) in str(raised.value)
    assert raised.value.sent is False
    assert simulator.requests == []


async def test_rotated_files_are_used_without_a_restart(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry, tmp_path: Path
) -> None:
    cert_path, key_path = tmp_path / "client.pem", tmp_path / "client.key"
    shutil.copy(dev_pki.cpo_client_cert, cert_path)
    shutil.copy(dev_pki.cpo_client_key, key_path)
    config = client_config(dev_pki, simulator, client_cert=cert_path, client_key=key_path,
                           cert_reload_interval_seconds=0.0)
    async with HubjectClient(config, registry=registry) as client:
        await client.call("PushEvseStatus", status_push("Available"))
        first = simulator.last_client_certificate
        # The secret is rotated: new files appear under the same names.
        new_dir = tmp_path / "new"
        new_dir.mkdir()
        rotated = certs.issue_client_certificate(dev_pki, new_dir / "c.pem", new_dir / "c.key")
        shutil.copy(new_dir / "c.key", key_path)
        shutil.copy(new_dir / "c.pem", cert_path)
        await client.call("PushEvseStatus", status_push("Occupied"))
        second = simulator.last_client_certificate
    assert first is not None
    assert second is not None
    assert first.serial_number == certs.load_certificate(dev_pki.cpo_client_cert).serial_number
    assert second.serial_number == rotated.serial_number
    assert registry.get_sample_value(
        "hubject_connector_client_certificate_not_after_timestamp_seconds"
    ) == rotated.not_valid_after_utc.timestamp()


async def test_rotation_is_picked_up_in_the_background_without_any_call(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry, tmp_path: Path
) -> None:
    cert_path, key_path = tmp_path / "client.pem", tmp_path / "client.key"
    shutil.copy(dev_pki.cpo_client_cert, cert_path)
    shutil.copy(dev_pki.cpo_client_key, key_path)
    config = client_config(dev_pki, simulator, client_cert=cert_path, client_key=key_path,
                           cert_reload_interval_seconds=1.0)
    gauge = "hubject_connector_client_certificate_not_after_timestamp_seconds"
    async with HubjectClient(config, registry=registry):
        new_dir = tmp_path / "new"
        new_dir.mkdir()
        rotated = certs.issue_client_certificate(
            dev_pki, new_dir / "c.pem", new_dir / "c.key", valid_days=3
        )
        shutil.copy(new_dir / "c.key", key_path)
        shutil.copy(new_dir / "c.pem", cert_path)
        expected = rotated.not_valid_after_utc.timestamp()
        # No request is sent: only the client's own watch can move the gauge. Bounded by
        # time, not by a count of polls, so a loaded machine gets the full 30 s.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                while registry.get_sample_value(gauge) != expected:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)  # a metric value has no event to wait on
    assert registry.get_sample_value(gauge) == expected
    assert simulator.requests == []


async def test_a_server_certificate_for_another_host_is_refused(
    dev_pki: DevPki, simulator_config: SimulatorConfig, registry: CollectorRegistry,
    tmp_path: Path,
) -> None:
    # Issued by the trusted CA, but for another name: the chain alone is not enough,
    # the host name is checked too.
    key = certs.new_key("ec")
    cert = certs.issue_certificate(
        certs.name("hubject.invalid"), key, usage="server", sans=("hubject.invalid",),
        issuer_cert=certs.load_certificate(dev_pki.ca_cert),
        issuer_key=certs.load_private_key(dev_pki.ca_key),
    )
    cert_path, key_path = certs.write_pair(tmp_path, "elsewhere", cert, key)
    config = simulator_config.replace(server_cert=cert_path, server_key=key_path)
    async with Simulator(config) as elsewhere:
        async with HubjectClient(client_config(dev_pki, elsewhere),
                                 registry=registry) as client:
            with pytest.raises(ServerCertificateUntrusted) as raised:
                await client.call("PushEvseStatus", status_push())
        assert elsewhere.requests == []
    assert "does not match the host" in str(raised.value)
    assert raised.value.sent is False
    assert raised.value.attempts == 1


async def test_a_certificate_without_the_operator_id_is_warned_at_start_and_gets_017(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    # The CPO certificate carries DE*ABC; the configuration names another operator.
    config = client_config(dev_pki, simulator, operator_id="DE*XYZ")
    with capture_logs() as logs:
        async with HubjectClient(config, registry=registry) as client:
            warned = [e for e in logs if "017" in e["event"]]
            with pytest.raises(OicpStatusError) as raised:
                await client.call("PushEvseStatus", status_push())
    # Warned at start, before any call was made.
    assert len(warned) == 1
    assert warned[0]["log_level"] == "warning"
    assert warned[0]["operator_id"] == "DE*XYZ"
    # ... and Hubject (here the simulator) answers as predicted, once: 017 is permanent.
    assert raised.value.code == "017"
    assert not raised.value.transient
    assert raised.value.attempts == 1
    [record] = simulator.requests
    assert record.path_params == {"operatorID": "DE*XYZ"}


@pytest.mark.parametrize(("days", "threshold"), [(20, 30), (5, 7)])
async def test_a_certificate_close_to_expiry_is_warned_at_start_and_exported(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry, tmp_path: Path,
    days: int, threshold: int,
) -> None:
    cert_path, key_path = tmp_path / "client.pem", tmp_path / "client.key"
    issued = certs.issue_client_certificate(dev_pki, cert_path, key_path, valid_days=days)
    config = client_config(dev_pki, simulator, client_cert=cert_path, client_key=key_path)
    with capture_logs() as logs:
        async with HubjectClient(config, registry=registry) as client:
            warned = [e for e in logs if "expires within" in e["event"]]
            # Still valid: it is used, and the simulator sees it.
            assert (await client.call("PushEvseStatus", status_push())).result
    assert [(e["log_level"], e["threshold_days"]) for e in warned] == [("warning", threshold)]
    assert registry.get_sample_value(
        "hubject_connector_client_certificate_not_after_timestamp_seconds"
    ) == issued.not_valid_after_utc.timestamp()
    seen = simulator.last_client_certificate
    assert seen is not None
    assert seen.serial_number == issued.serial_number
