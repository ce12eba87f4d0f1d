"""The client's contract: answers decoded, decisions returned, sessions shared safely."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from hubject_connector.certs import DevPki
from hubject_connector.errors import ConnectorError
from hubject_connector.hubject.client import HubjectClient, trace_config
from hubject_connector.hubject.errors import OicpStatusError
from hubject_connector.oicp import codec
from hubject_connector.oicp.authorization import AuthorizationStart, AuthorizeStart
from hubject_connector.simulator import Simulator

from .conftest import CARD_UID, OPERATOR_ID, authorize_start, client_config, status_push

UNKNOWN_UID = "0A0B0C0D0E0F11"


async def test_a_refusal_by_hubject_is_an_answer_not_an_error(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    request = codec.load(AuthorizeStart, {
        "OperatorID": OPERATOR_ID,
        "EvseID": "DE*ABC*E1234*1",
        "Identification": {"RFIDMifareFamilyIdentification": {"UID": UNKNOWN_UID}},
    })
    with capture_logs() as logs:
        async with HubjectClient(client_config(dev_pki, simulator),
                                 registry=registry) as client:
            answer = await client.call("AuthorizeStart", request)
    assert isinstance(answer, AuthorizationStart)
    assert not answer.authorized
    assert answer.status_code.code == "102"
    # The card number never reaches the logs unmasked.
    assert UNKNOWN_UID not in repr(logs)


async def test_a_platform_error_on_authorize_start_is_raised_once(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    simulator.faults.result_false(3, operation="AuthorizeStart", code="021")
    async with HubjectClient(client_config(dev_pki, simulator), registry=registry) as client:
        with pytest.raises(OicpStatusError) as raised:
            await client.call("AuthorizeStart", authorize_start())
    assert raised.value.code == "021"
    assert raised.value.transient
    assert raised.value.attempts == 1
    assert len(simulator.requests_of("AuthorizeStart")) == 1


async def test_an_injected_session_is_used_and_left_open(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    async with aiohttp.ClientSession(trace_configs=[trace_config()]) as session:
        config = client_config(dev_pki, simulator)
        async with HubjectClient(config, session=session, registry=registry) as client:
            answer = await client.call("PushEvseStatus", status_push())
        assert answer.result
        assert not session.closed
        # Still usable by its owner, and by a second client.
        async with HubjectClient(config, session=session, registry=registry) as client:
            assert (await client.call("PushEvseStatus", status_push())).result
    assert len(simulator.requests_of("PushEvseStatus")) == 2


async def test_the_wrong_message_for_an_operation_is_refused_before_sending(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    async with HubjectClient(client_config(dev_pki, simulator), registry=registry) as client:
        with pytest.raises(TypeError, match="PushEvseStatus"):
            await client.call("PushEvseData", status_push())
    assert simulator.requests == []


async def test_contract_ids_and_card_numbers_stay_out_of_the_logs(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    # The transport and the simulator log without the masking processor seeing it here
    # (capture_logs bypasses processors): what they emit themselves must hold no IDs.
    evco_id = "DE-8EO-CAB123456-7"
    by_contract = codec.load(AuthorizeStart, {
        "OperatorID": OPERATOR_ID,
        "EvseID": "DE*ABC*E1234*1",
        "Identification": {"RemoteIdentification": {"EvcoID": evco_id}},
    })
    errors: list[str] = []
    with capture_logs() as logs:
        async with HubjectClient(client_config(dev_pki, simulator),
                                 registry=registry) as client:
            refused = await client.call("AuthorizeStart", by_contract)
            simulator.faults.http_503(1, operation="AuthorizeStart")
            simulator.faults.drop_connection(1, operation="AuthorizeStart")
            for _ in range(2):
                with pytest.raises(ConnectorError) as raised:
                    await client.call("AuthorizeStart", by_contract)
                errors.append(str(raised.value))
            simulator.faults.result_false(1, operation="AuthorizeStart", code="022")
            with pytest.raises(OicpStatusError) as status_error:
                await client.call("AuthorizeStart", authorize_start())
            errors.append(str(status_error.value))
    assert not refused.authorized
    assert len(simulator.requests_of("AuthorizeStart")) == 4
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "request to Hubject failed"]
    text = repr(logs) + repr(errors)
    for secret in (evco_id, "DE8EOCAB1234567", UNKNOWN_UID, CARD_UID):
        assert secret not in text
