"""Bound context: each task sees its own SessionID, EvseID and operation, and bound contract
IDs and card UIDs are masked like everything else."""

from __future__ import annotations

import contextvars

import structlog

from hubject_connector.logs import bind_session, log_context
from tests.unit.logs.conftest import Capture, json_lines

SESSION_A = "b2b1a7d8-1234-4abc-9def-0123456789ab"
SESSION_B = "5e7c1a2b-0d3f-4a6e-9b8c-1f2e3d4c5b6a"


def test_each_context_keeps_its_own_binding(capture_logs: Capture) -> None:
    # asyncio runs every task in a copy of the context it was created in: the same as here.
    out = capture_logs("json")
    log = structlog.get_logger()

    def handle(session_id: str, evse_id: str) -> None:
        with bind_session(session_id, evse_id=evse_id, operation="AuthorizeRemoteStart"):
            log.info("started")

    contextvars.copy_context().run(handle, SESSION_A, "DE*ABC*E1")
    contextvars.copy_context().run(handle, SESSION_B, "DE*ABC*E2")
    log.info("outside")
    first, second, outside = json_lines(out)
    assert (first["session_id"], first["evse_id"]) == (SESSION_A, "DE*ABC*E1")
    assert (second["session_id"], second["evse_id"]) == (SESSION_B, "DE*ABC*E2")
    assert first["operation"] == second["operation"] == "AuthorizeRemoteStart"
    assert not {"session_id", "evse_id", "operation"} & set(outside)


def test_bound_identifiers_are_masked(capture_logs: Capture) -> None:
    out = capture_logs("json")
    with log_context(evco_id="DE-8EO-CAB123456-7", card={"UID": "04A2B3C4D5E6F7"}):
        structlog.get_logger().info("authorizing")
    text = out.getvalue()
    assert "DE-8EO-CAB123456-7" not in text
    assert "04A2B3C4D5E6F7" not in text
    (line,) = json_lines(out)
    assert line["evco_id"] == "DE-8EO-*********-*"
    assert line["card"] == {"UID": "04************"}
