"""Mutual TLS: who may talk to the simulator, and which certificate it saw."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from hubject_connector.certs import DevPki, issue_client_certificate
from hubject_connector.oicp.evse import PushEvseStatus
from hubject_connector.simulator import Simulator
from tests.integration.simulator.conftest import CpoClient, client_ssl
from tests.unit.simulator import payloads

STATUS = payloads.evse_status("fullLoad", {payloads.evse_id(1): "Available"})


async def push_with(simulator: Simulator, context_args: tuple[Path, ...]) -> int:
    context = client_ssl(*context_args)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        url = simulator.url + "/evsepush/v21/operators/DE*ABC/status-records"
        async with session.post(url, data=payloads.encode(STATUS)) as response:
            return response.status


@pytest.mark.parametrize(
    "certificate",
    [None, "other", "expired"],
    ids=["no client certificate", "certificate from another CA", "expired certificate"],
)
async def test_handshake_is_refused(hubject_simulator: Simulator, dev_pki: DevPki,
                                    certificate: str | None) -> None:
    pairs = {
        None: (),
        "other": (dev_pki.other_client_cert, dev_pki.other_client_key),
        "expired": (dev_pki.expired_client_cert, dev_pki.expired_client_key),
    }
    with pytest.raises(aiohttp.ClientError):
        await push_with(hubject_simulator, (dev_pki.ca_cert, *pairs[certificate]))
    assert hubject_simulator.requests == []
    assert hubject_simulator.state.evse_status_of("DE*ABC") == {}


async def test_valid_push_is_accepted_stored_and_recorded(cpo: CpoClient,
                                                          dev_pki: DevPki) -> None:
    answer = await cpo.post("PushEvseStatus", STATUS)
    assert answer.status == 200
    assert answer.json == {"Result": True,
                           "StatusCode": {"Code": "000", "Description": "Success."}}
    sim = cpo.simulator
    assert sim.state.evse_status_of("DE*ABC") == {"DE*ABC*E1": "Available"}
    [record] = sim.requests
    assert record.operation == "PushEvseStatus"
    assert record.path_params == {"operatorID": "DE*ABC"}
    assert record.raw_body == payloads.encode(STATUS)
    assert record.json == STATUS
    assert isinstance(record.message, PushEvseStatus)
    assert (record.http_status, record.result, record.status_code) == (200, True, "000")
    assert record.ended is not None
    assert record.ended >= record.started
    assert record.client is not None
    assert record.client.subject == "CN=DE*ABC,OU=DE*ABC"
    assert record.client.issuer.startswith("CN=hubject-connector dev CA")


async def test_the_certificate_switch_is_visible(hubject_simulator: Simulator, dev_pki: DevPki,
                                                 tmp_path: Path) -> None:
    rotated_cert, rotated_key = tmp_path / "rotated.pem", tmp_path / "rotated.key"
    new = issue_client_certificate(dev_pki, rotated_cert, rotated_key)
    assert await push_with(hubject_simulator, (dev_pki.ca_cert, dev_pki.cpo_client_cert,
                                               dev_pki.cpo_client_key)) == 200
    old = hubject_simulator.last_client_certificate
    assert await push_with(hubject_simulator, (dev_pki.ca_cert, rotated_cert, rotated_key)) == 200
    seen = hubject_simulator.client_certificates
    assert len(seen) == 2
    assert seen[0] == old
    assert seen[1].serial_number == new.serial_number
    assert hubject_simulator.last_client_certificate == seen[1]
    assert seen[0].subject == seen[1].subject, "same operator, new certificate"
