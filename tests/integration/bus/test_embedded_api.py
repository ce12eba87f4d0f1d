"""The embedded bus's HTTP API as a backend meets it: auth, hostile input, paging, sizes."""

from __future__ import annotations

import asyncio
import copy
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hubject_connector.bus.base import QueueSpec
from hubject_connector.bus.contract import MessageType, Outcome, make_delivery_result
from hubject_connector.bus.embedded import EmbeddedBus
from hubject_connector.bus.factory import build_bus
from hubject_connector.errors import BusError
from tests.integration.bus.conftest import (
    EVSE_STATUS,
    WAIT,
    BusKit,
    Collector,
    encode,
    status_dict,
    status_event,
)
from tests.unit.bus_contract.documents import fenced_blocks, http_example

CLOUDEVENTS = {"Content-Type": "application/cloudevents+json"}


async def call(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """One request; the status and the JSON answer (every answer of the API is JSON)."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            url,
            # Large bodies as a stream: aiohttp warns of raw bytes beyond a megabyte.
            data=None if body is None else io.BytesIO(body),
            headers={**CLOUDEVENTS, **(headers or {})},
        ) as response,
    ):
        assert response.content_type == "application/json", await response.text()
        answer: dict[str, Any] = await response.json()
        return response.status, answer


async def served(kit: BusKit, **embedded: Any) -> tuple[EmbeddedBus, str]:
    """A connected embedded bus running its HTTP API; the bus and its URL."""
    bus = await kit.connected(serve=True, **embedded)
    assert isinstance(bus, EmbeddedBus)
    assert bus.http_url is not None
    return bus, bus.http_url


async def test_the_same_message_posted_twice_is_stored_once_and_answered_202_twice(
    embedded_kit: BusKit,
) -> None:
    spec = QueueSpec(embedded_kit.queue("status"), bindings=(EVSE_STATUS,))
    bus, url = await served(embedded_kit, queues=[spec])
    sent = status_event()
    # The backend lost the first answer and sends again, as the contract tells it to.
    first = await call("POST", f"{url}/v1/messages", sent.to_bytes())
    second = await call("POST", f"{url}/v1/messages", sent.to_bytes())
    assert first == second == (202, {"id": sent.id, "routing_key": EVSE_STATUS})
    marker = status_event(status="Occupied")
    assert (await call("POST", f"{url}/v1/messages", marker.to_bytes()))[0] == 202

    got = Collector()
    await bus.consume(spec.name, got)
    await got.wait_until(lambda: marker.id in got.ids, "the marker behind both")
    assert got.ids == [sent.id, marker.id]


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    """A file holding a bearer token."""
    path = tmp_path / "bus-token"
    path.write_text("s3cret-token-4711\n", encoding="utf-8")
    return path


async def test_with_a_token_every_route_needs_it(
    embedded_kit: BusKit, token_file: Path
) -> None:
    spec = QueueSpec(embedded_kit.queue("status"), bindings=(EVSE_STATUS,))
    _, url = await served(embedded_kit, queues=[spec], auth_token_file=token_file)
    sent = status_event()
    good = {"Authorization": "Bearer s3cret-token-4711"}
    routes = [
        ("POST", f"{url}/v1/messages", sent.to_bytes()),
        ("GET", f"{url}/v1/results", None),
        ("GET", f"{url}/v1/dead-letters", None),
        ("GET", f"{url}/v1/dead-letters/some-id", None),
    ]
    for wrong in ({}, {"Authorization": "Bearer s3cret-token-4712"},
                  {"Authorization": "Bearer s3cret"}, {"Authorization": "s3cret-token-4711"},
                  {"Authorization": "Basic czNjcmV0LXRva2VuLTQ3MTE="}):
        for method, route, body in routes:
            status, answer = await call(method, route, body, wrong)
            assert status == 401, (wrong, route)
            assert "Bearer" in answer["error"]
    answers = [(await call(method, route, body, good))[0] for method, route, body in routes]
    assert answers == [202, 200, 200, 404]


async def test_listening_beyond_loopback_without_a_token_is_refused(
    embedded_kit: BusKit, token_file: Path
) -> None:
    bus = embedded_kit.bus(serve=True, http_host="0.0.0.0")  # noqa: S104 - the point
    with pytest.raises(BusError, match=r"^bus\.embedded\.auth_token_file: required when") as e:
        await bus.connect()
    assert not e.value.transient
    assert not bus.is_connected
    # With a token it listens there.
    guarded = await embedded_kit.connected(
        serve=True, http_host="0.0.0.0", auth_token_file=token_file  # noqa: S104
    )
    assert isinstance(guarded, EmbeddedBus)
    assert guarded.http_url is not None

    empty = token_file.with_name("empty")
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(BusError, match=r"^bus\.embedded\.auth_token_file: .* is empty"):
        await embedded_kit.connected(serve=True, auth_token_file=empty)
    with pytest.raises(BusError, match=r"^bus\.embedded\.auth_token_file: cannot read"):
        await embedded_kit.connected(serve=True, auth_token_file=token_file.with_name("nope"))


def nested(depth: int) -> bytes:
    """A status change whose data is nested ``depth`` levels deep."""
    return b'{"specversion":"1.0","data":' + b"[" * depth + b"]" * depth + b"}"


async def test_hostile_bodies_are_refused_with_400_and_kept_never_a_500(
    embedded_kit: BusKit,
) -> None:
    bus, url = await served(embedded_kit)
    huge_key = status_dict()
    huge_key["data"] = {**huge_key["data"], "k" * 1_000_000: 1}
    bodies = {
        "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
        "objects 100,000 deep": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "data nested deep": nested(50_000),
        "an unpaired surrogate": encode(status_dict(id="ab")).replace(b'"ab"', b'"\\ud800"'),
        "a megabyte key": encode(huge_key),
        "a number of 100,000 digits": b'{"id": ' + b"9" * 100_000 + b"}",
        "not UTF-8": b'{"id": "\xff\xfe"}',
        "empty": b"",
        "a bare string": b'"hello"',
    }
    for what, body in bodies.items():
        status, answer = await call("POST", f"{url}/v1/messages", body)
        assert status == 400, (what, answer)
        assert len(answer["error"]) < 2000, what
        kept = await bus.get_dead_letter(answer["dead_letter_id"])
        assert kept.body == body, what
    status, answer = await call("POST", f"{url}/v1/messages", encode(status_dict(id="ab"))
                                .replace(b'"ab"', b'"\\ud800"'))
    assert answer["error"].startswith("/id: holds an unpaired UTF-16 surrogate")

    too_big = b" " * (16 * 1024 * 1024 + 1)
    status, answer = await call("POST", f"{url}/v1/messages", too_big)
    assert status == 413
    assert "larger than" in answer["error"]


def full_load(evses: int, *, broken_last: bool = False) -> bytes:
    """The documented EVSE full load with ``evses`` copies of its EVSE.

    ``broken_last`` breaks the last EVSE's EvseID: the whole document then goes through
    the full validator, which words the error (the slow path, a second or more here).
    """
    [example] = [
        json.loads(body) for body in fenced_blocks("json")
        if f'"{MessageType.EVSE_FULL_LOAD}"' in body
    ]
    document = copy.deepcopy(example)
    document["data"]["evses"] = [copy.deepcopy(document["data"]["evses"][0])
                                 for _ in range(evses)]
    if broken_last:
        document["data"]["evses"][-1]["evse_id"] = "not an EvseID"
    return json.dumps(document).encode()


async def test_a_large_message_being_checked_does_not_hold_up_small_ones(
    embedded_kit: BusKit,
) -> None:
    evse = QueueSpec(embedded_kit.queue("evse"), bindings=(str(MessageType.EVSE_FULL_LOAD),))
    status = QueueSpec(embedded_kit.queue("status"), bindings=(EVSE_STATUS,))
    _, url = await served(embedded_kit, queues=[evse, status])
    # A few megabytes breaking the contract at the end: checking them takes a second or
    # more (a valid message passes the compiled check much sooner).
    big = full_load(4096, broken_last=True)
    assert len(big) > 2_000_000
    uploaded = asyncio.Event()

    async def sent(*_: Any) -> None:
        uploaded.set()

    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(sent)
    order: list[str] = []

    async def post_big() -> None:
        async with (
            aiohttp.ClientSession(trace_configs=[trace]) as session,
            session.post(
                f"{url}/v1/messages", data=io.BytesIO(big), headers=CLOUDEVENTS
            ) as response,
        ):
            assert response.status == 400, await response.text()
            assert "/data/evses/4095/evse_id" in await response.text()
        order.append("big")

    task = asyncio.create_task(post_big())
    async with asyncio.timeout(WAIT):
        await uploaded.wait()
    await asyncio.sleep(0.2)  # the server has read it and is checking it now
    small = status_event()
    assert (await call("POST", f"{url}/v1/messages", small.to_bytes()))[0] == 202
    order.append("small")
    async with asyncio.timeout(WAIT):
        await task
    # Checked on the event loop, the big one would have made the small one wait behind it.
    assert order == ["small", "big"]


async def test_dead_letters_are_paged_without_bodies_and_capped_oldest_first(
    embedded_kit: BusKit,
) -> None:
    _, url = await served(embedded_kit, max_dead_letters=3)
    refused = [encode(status_dict(id=f"bad-{n}", type="nope")) for n in range(5)]
    ids = []
    for body in refused:
        status, answer = await call("POST", f"{url}/v1/messages", body)
        assert status == 400
        ids.append(answer["dead_letter_id"])

    status, page = await call("GET", f"{url}/v1/dead-letters?limit=2")
    assert status == 200
    # The two oldest went when the fourth and fifth came: three are kept.
    assert [d["id"] for d in page["dead_letters"]] == ids[2:4]
    assert page["more"] is True
    assert all("body" not in d and d["size"] == len(refused[0]) for d in page["dead_letters"])
    status, rest = await call("GET", f"{url}/v1/dead-letters?limit=2&after={page['next']}")
    assert [d["id"] for d in rest["dead_letters"]] == ids[4:]
    assert rest["more"] is False
    status, empty = await call("GET", f"{url}/v1/dead-letters?after={rest['next']}")
    assert (empty["dead_letters"], empty["next"]) == ([], rest["next"])
    letter = (await call("GET", f"{url}/v1/dead-letters/{ids[4]}"))[1]
    assert letter["body"] == refused[4].decode()
    assert (await call("GET", f"{url}/v1/dead-letters/{ids[0]}"))[0] == 404

    for query in ("limit=101", "limit=0", "after=x"):
        status, answer = await call("GET", f"{url}/v1/dead-letters?{query}")
        assert status == 400, query
        assert answer["error"].startswith(query.partition("=")[0] + ": ")


async def test_dead_letters_older_than_their_age_are_gone(embedded_kit: BusKit) -> None:
    _, url = await served(embedded_kit)
    status, answer = await call("POST", f"{url}/v1/messages", b"{not json")
    assert status == 400
    # Another process on the file keeps dead letters for no time at all.
    _, strict = await served(embedded_kit, dead_letter_max_age_seconds=1e-9)
    assert (await call("GET", f"{strict}/v1/dead-letters"))[1]["dead_letters"] == []
    assert (await call("GET", f"{url}/v1/dead-letters/{answer['dead_letter_id']}"))[0] == 404


async def test_results_are_kept_for_reading_while_the_webhook_gets_them_too(
    embedded_kit: BusKit, unused_tcp_port: int
) -> None:
    # The webhook is down: the result waits in its queue for the next try, and the
    # backend can read it meanwhile.
    bus, url = await served(embedded_kit, webhook_url=f"http://127.0.0.1:{unused_tcp_port}/")
    result = make_delivery_result(status_event().id, Outcome.ACCEPTED, status_code="000")
    await bus.publish(str(MessageType.DELIVERY_RESULT), result)
    status, page = await call("GET", f"{url}/v1/results")
    assert status == 200
    assert [item["message"] for item in page["results"]] == [result.to_dict()]


async def test_build_bus_serves_the_http_api_unless_told_not_to(embedded_kit: BusKit) -> None:
    config = embedded_kit.config
    serving = build_bus(config)
    quiet = build_bus(config, serve=False)
    embedded_kit.made += [serving, quiet]
    await serving.connect()
    await quiet.connect()
    assert isinstance(serving, EmbeddedBus)
    assert isinstance(quiet, EmbeddedBus)
    assert serving.http_url is not None
    assert quiet.http_url is None
    assert (await call("GET", f"{serving.http_url}/v1/results"))[0] == 200


async def test_the_answers_have_the_fields_docs_contract_md_shows(embedded_kit: BusKit) -> None:
    bus, url = await served(embedded_kit)
    result = make_delivery_result(status_event().id, Outcome.ACCEPTED, status_code="000")
    await bus.publish(str(MessageType.DELIVERY_RESULT), result)
    assert (await call("POST", f"{url}/v1/messages", b"{"))[0] == 400

    documented = http_example("GET /v1/results?")
    real = (await call("GET", f"{url}/v1/results"))[1]
    assert set(real) == set(documented)
    assert set(real["results"][0]) == set(documented["results"][0])
    documented = http_example("GET /v1/dead-letters?")
    real = (await call("GET", f"{url}/v1/dead-letters"))[1]
    assert set(real) == set(documented)
    assert set(real["dead_letters"][0]) == set(documented["dead_letters"][0])
