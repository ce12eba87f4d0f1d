"""Hubject unreachable for a while, then back; Hubject answering slowly.

The simulator stops listening in the middle of a burst (every call is refused) and starts
again on the same port with what it held; CDRs wait in their retry queue and statuses in
the state store meanwhile. Then every answer takes 5 seconds, which is slow but within
the client's timeout: nothing may be given up or sent twice because of it.
"""

from __future__ import annotations

import pytest

from hubject_connector.simulator import Simulator
from tests.integration.flows import messages
from tests.integration.flows.conftest import eventually
from tests.resilience.conftest import (
    Burst,
    Envs,
    assert_nothing_lost,
    send_all,
    settled,
    wait_for_results,
)

pytestmark = pytest.mark.slow

RETRIED = "hubject_connector_flow_messages_retried_total"
PUSH_FAILURES = "hubject_connector_flow_status_push_failures_total"


@pytest.mark.parametrize("kind", ["embedded", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
async def test_hubject_down_for_a_while_then_back_loses_nothing(
    envs: Envs, simulator: Simulator, request: pytest.FixtureRequest, kind: str,
) -> None:
    url = request.getfixturevalue("rabbitmq_url") if kind == "rabbitmq" else None
    env = await envs.make(kind, simulator, url=url)
    connector = await env.connector()
    # Back on the same address: the connector's configuration does not change.
    simulator.config = simulator.config.replace(port=simulator.port)
    burst = Burst.make(cdrs=20, evses=5, changes=40)
    docs = burst.interleaved()

    await send_all(env.backend, docs[: len(docs) // 2])
    await wait_for_results(env.backend, 3)
    await simulator.stop()
    await send_all(env.backend, docs[len(docs) // 2 :])
    # Down until the connector has seen it: CDRs retried, a status push failed.
    await eventually(lambda: connector.metric(RETRIED, flow="cdr") >= 3
                     and connector.metric(PUSH_FAILURES) >= 1, "calls to fail")
    await simulator.start()

    await settled(env.backend, burst)
    # Calls cut by the stop may have been answered without the answer arriving: such a
    # CDR is sent again and Hubject says it has it, which counts as accepted.
    assert_nothing_lost(env, burst, exactly_one_call=False, answers_lost=True)


async def test_hubject_answering_in_5_seconds_loses_nothing(
    envs: Envs, simulator: Simulator,
) -> None:
    env = await envs.make("embedded", simulator)
    await env.connector()
    simulator.faults.latency(5.0)
    burst = Burst.make(cdrs=6, evses=3, changes=12)

    await send_all(env.backend, burst.interleaved())
    reply = await env.backend.ask(messages.authorize_start(deadline_seconds=8.0), timeout=12.0)

    assert reply.data["authorization_status"] == "Authorized"
    await settled(env.backend, burst)
    assert_nothing_lost(env, burst, exactly_one_call=True)
