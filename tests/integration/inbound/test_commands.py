"""End to end over mutual TLS: the simulator as EMP, the inbound server, a bus, a backend.

Each remote request becomes a command the backend receives as docs/contract.md says, and
the backend's reply comes back to the EMP as the acknowledgement; without a reply by the
deadline the EMP still gets an answer in time, and a late reply is reported to the backend.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import pytest

from hubject_connector.certs import DevPki
from hubject_connector.simulator import Simulator
from tests.integration.inbound.conftest import (
    EVCO_ID,
    EVSE_ID,
    Answer,
    Behaviour,
    StackFactory,
    accept,
)

START = "com.hubject-connector.remote.start.command.v1"
STOP = "com.hubject-connector.remote.stop.command.v1"
RESERVE = "com.hubject-connector.reservation.start.command.v1"
UNRESERVE = "com.hubject-connector.reservation.stop.command.v1"
PROVIDER = "DE-8PS"


def scripted(command: dict[str, Any]) -> Answer:
    """Carry out starts and reservation stops; refuse stops (400) and reservations (601)."""
    kind = command["type"]
    if kind == STOP:
        return Answer({"result": False, "status_code": "400",
                       "status_description": "Session is invalid",
                       "additional_info": "The session already ended"})
    if kind == RESERVE:
        return Answer({"result": False, "status_code": "601"})
    return accept(command)


async def test_remote_commands_reach_the_backend_and_its_replies_reach_the_emp(
    stacks: StackFactory, simulator: Simulator, dev_pki: DevPki
) -> None:
    stack = await stacks.start(scripted, allow_ips=("127.0.0.0/8",))
    session = str(uuid.uuid4())
    reservation = str(uuid.uuid4())
    async with simulator.emp(stack.server.url, ca=dev_pki.ca_cert, provider_id=PROVIDER) as emp:
        started = await emp.remote_start(EVSE_ID, EVCO_ID, session_id=session,
                                         partner_product_id="AC 22kW",
                                         emp_partner_session_id="emp-0815")
        stopped = await emp.remote_stop(session, EVSE_ID)
        reserved = await emp.reservation_start(EVSE_ID, EVCO_ID, session_id=reservation,
                                               duration_minutes=30)
        unreserved = await emp.reservation_stop(reservation, EVSE_ID)

    assert [c["type"] for c in stack.backend.commands] == [START, STOP, RESERVE, UNRESERVE]
    start = stack.backend.commands[0]
    assert start["data"] == {
        "session_id": session,
        "emp_partner_session_id": "emp-0815",
        "provider_id": "DE-8PS",
        "evse_id": EVSE_ID,
        "identification": {"kind": "remote", "evco_id": EVCO_ID},
        "partner_product_id": "AC 22kW",
    }
    assert start["subject"] == EVSE_ID
    assert datetime.fromisoformat(start["deadline"]) > datetime.fromisoformat(start["time"])
    assert stack.backend.commands[2]["data"]["duration_minutes"] == 30
    assert stack.backend.commands[3]["subject"] == reservation

    assert started.result is True
    assert started.status_code.code == "000"
    assert started.session_id == session
    assert started.cpo_partner_session_id == "cpo-" + start["id"][:8]
    assert started.emp_partner_session_id == "emp-0815"

    assert stopped.result is False
    assert stopped.status_code.code == "400"
    assert stopped.status_code.description == "Session is invalid"
    assert stopped.status_code.additional_info == "The session already ended"
    assert stopped.session_id == session

    assert (reserved.result, reserved.status_code.code) == (False, "601")
    assert reserved.status_code.description == "EVSE already reserved."
    assert (unreserved.result, unreserved.status_code.code) == (True, "000")
    assert stack.metric("hubject_connector_inbound_requests_total",
                        operation="AuthorizeRemoteStart", http_status="200",
                        status_code="000") == 1


def never(command: dict[str, Any]) -> Answer:
    """A backend that takes commands and never answers."""
    return Answer(None)


async def test_without_a_reply_the_emp_gets_the_timeout_answer_before_hubject_gives_up(
    stacks: StackFactory, simulator: Simulator, dev_pki: DevPki
) -> None:
    deadline = 1.0
    stack = await stacks.start(never, reply_deadline_seconds=deadline,
                               timeout_status_code="510")
    session = str(uuid.uuid4())
    # Hubject waits 10 s for the 8 s default deadline: the EMP here gives up 2 s after it.
    async with simulator.emp(stack.server.url, ca=dev_pki.ca_cert, provider_id=PROVIDER,
                             timeout=deadline + 2.0) as emp:
        ack = await emp.remote_start(EVSE_ID, EVCO_ID, session_id=session)

    assert (ack.result, ack.status_code.code) == (False, "510")
    assert ack.session_id == session
    assert len(stack.backend.commands) == 1
    assert stack.metric("hubject_connector_inbound_command_timeouts_total",
                        operation="AuthorizeRemoteStart", reason="no_reply") == 1


def late(command: dict[str, Any]) -> Answer:
    """Carry out the command, but reply well after the 1 s deadline."""
    return Answer(accept(command).data, delay=1.5)


async def test_a_late_reply_is_reported_to_the_backend_as_dropped(
    stacks: StackFactory, simulator: Simulator, dev_pki: DevPki
) -> None:
    stack = await stacks.start(late, reply_deadline_seconds=1.0)
    async with simulator.emp(stack.server.url, ca=dev_pki.ca_cert, provider_id=PROVIDER,
                             timeout=3.0) as emp:
        ack = await emp.remote_stop(str(uuid.uuid4()), EVSE_ID)
    assert (ack.result, ack.status_code.code) == (False, "501")

    backend = stack.backend
    await backend.wait_for(lambda: bool(backend.results), "the delivery result of the reply")
    reply = backend.replies[0]
    result = backend.results[0]
    assert result["correlationid"] == reply["id"]
    assert result["data"]["message_id"] == reply["id"]
    assert result["data"]["message_type"] == "com.hubject-connector.remote.stop.reply.v1"
    assert result["data"]["outcome"] == "dropped"
    assert "501" in result["data"]["reason"]
    kept = [d for d in await stack.bus.list_dead_letters() if d.queue == "late-replies"]
    assert [json.loads(d.body)["id"] for d in kept] == [reply["id"]]
    assert stack.metric("hubject_connector_inbound_late_replies_total",
                        operation="AuthorizeRemoteStop") == 1


def wrong_type(command: dict[str, Any]) -> Answer:
    """Reply at once, but with a reply of another command's type."""
    return Answer({"result": True, "status_code": "000"},
                  reply_type="com.hubject-connector.reservation.stop.reply.v1")


def contradicting(command: dict[str, Any]) -> Answer:
    """Reply at once, but result true with a refusal's code (the contract forbids it)."""
    return Answer({"result": True, "status_code": "400"})


@pytest.mark.parametrize(
    ("behaviour", "words"),
    [(wrong_type, "/type"), (contradicting, "/data/status_code")],
    ids=["wrong-type", "breaks-the-contract"],
)
async def test_an_invalid_reply_is_not_used_and_is_reported_as_rejected(
    rabbit_stacks: StackFactory, simulator: Simulator, dev_pki: DevPki,
    behaviour: Behaviour, words: str,
) -> None:
    stack = await rabbit_stacks.start(behaviour)
    async with simulator.emp(stack.server.url, ca=dev_pki.ca_cert, provider_id=PROVIDER) as emp:
        ack = await emp.remote_stop(str(uuid.uuid4()), EVSE_ID)
    assert (ack.result, ack.status_code.code) == (False, "501")

    backend = stack.backend
    await backend.wait_for(lambda: bool(backend.results), "the delivery result of the reply")
    result = backend.results[0]["data"]
    assert result["outcome"] == "rejected"
    assert result["status_code"] == "022"
    assert result["message_id"] == backend.replies[0]["id"]
    assert words in result["reason"]
    assert stack.metric("hubject_connector_inbound_command_timeouts_total",
                        operation="AuthorizeRemoteStop", reason="invalid_reply") == 1
