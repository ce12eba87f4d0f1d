"""What only the embedded bus has: a crash-safe file, the HTTP API and the webhook."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from hubject_connector.bus.base import (
    LATE_REPLIES,
    IncomingMessage,
    QueueSpec,
    RequestFailed,
    RequestTimeout,
)
from hubject_connector.bus.contract import (
    ContractError,
    Envelope,
    Kind,
    MessageType,
    Outcome,
    make_delivery_result,
    make_envelope,
    make_reply,
    parse_envelope,
)
from hubject_connector.bus.embedded import EmbeddedBus
from hubject_connector.errors import BusError
from tests.integration.bus.conftest import (
    EVSE_STATUS,
    REMOTE_START,
    WAIT,
    BusKit,
    Collector,
    dead_letters_where,
    encode,
    eventually,
    read_line,
    remote_start,
    remote_start_reply,
    start_worker,
    status_dict,
    status_event,
)


async def test_kill_9_mid_stream_loses_nothing_and_redelivers_only_the_unacked(
    embedded_kit: BusKit,
) -> None:
    kit = embedded_kit
    spec = QueueSpec(kit.queue("status"), bindings=(EVSE_STATUS,))
    worker = await start_worker(kit, "stream", spec.name, "100000")
    assert worker.stdout is not None
    published: list[str] = []
    handled_before: list[str] = []
    try:
        async with asyncio.timeout(WAIT):
            while len(handled_before) < 50:
                line = (await worker.stdout.readline()).decode()
                assert line, "the worker stopped early"
                kind, _, message_id = line.strip().partition(" ")
                if kind == "PUBLISHED":
                    published.append(message_id)
                elif kind == "HANDLED":
                    handled_before.append(message_id)
    finally:
        worker.kill()  # SIGKILL, mid-publish and mid-consume
        await worker.wait()
    # Lines written before it died are still in the pipe.
    for line in (await worker.stdout.read()).decode().splitlines():
        kind, _, message_id = line.partition(" ")
        (published if kind == "PUBLISHED" else handled_before).append(message_id)

    # The file is consistent for a plain SQLite reader, too.
    with sqlite3.connect(kit.config.embedded.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    bus = await kit.connected()
    got = Collector()
    await bus.consume(spec, got)
    await got.wait_until(
        lambda: set(published) <= set(handled_before) | set(got.ids), "every published message"
    )
    marker = status_event(status="Reserved")
    await bus.publish(EVSE_STATUS, marker)
    await got.wait_until(lambda: marker.id in got.ids, "the marker")

    assert len(published) > len(handled_before) >= 50
    counts = Counter(got.ids)
    assert max(counts.values()) == 1
    # It handled one message at a time, acking each before taking the next: only the
    # last one it started can come back; everything acked stays acked.
    assert set(handled_before) & set(got.ids) <= {handled_before[-1]}
    assert await bus.list_dead_letters() == []


async def post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST ``body`` as CloudEvents JSON; the status and the JSON answer."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, data=body, headers={"Content-Type": "application/cloudevents+json"}
        ) as response,
    ):
        answer: dict[str, Any] = await response.json()
        return response.status, answer


async def get(url: str) -> tuple[int, dict[str, Any]]:
    """GET ``url``; the status and the JSON answer."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        answer: dict[str, Any] = await response.json()
        return response.status, answer


async def test_http_api_stores_valid_messages_and_keeps_refused_ones(
    embedded_kit: BusKit,
) -> None:
    kit = embedded_kit
    spec = QueueSpec(kit.queue("status"), bindings=(EVSE_STATUS,))
    bus = await kit.connected(serve=True)
    assert isinstance(bus, EmbeddedBus)
    assert bus.http_url is not None
    got = Collector()
    await bus.consume(spec, got)
    messages = f"{bus.http_url}/v1/messages"

    good = status_event()
    assert await post(messages, good.to_bytes()) == (
        202,
        {"id": good.id, "routing_key": EVSE_STATUS},
    )
    [delivered] = await got.wait_for(1)
    assert delivered.envelope == good

    wrong = encode(status_dict(data={"evse_id": "DE*ABC*E1", "status": "Broken"}))
    status, answer = await post(messages, wrong)
    assert status == 400
    assert answer["error"] == '/data/status: must be one of: "Available", "Reserved", ' \
        '"Occupied", "OutOfService", "EvseNotFound", "Unknown"'
    kept = await bus.get_dead_letter(answer["dead_letter_id"])
    assert kept.body == wrong
    assert kept.reason == f"ContractError: {answer['error']}"

    status, answer = await post(messages, b"{not json")
    assert status == 400
    assert answer["error"].startswith("is not valid JSON")

    unknown = encode(status_dict(type="com.hubject-connector.evse.state.v1"))
    status, answer = await post(messages, unknown)
    assert status == 400
    assert answer["error"].startswith("/type: is not a known message type")

    # Valid, but no queue takes deletes yet: nothing stored, the backend sends it again.
    delete = make_envelope(MessageType.EVSE_DELETE, {"evse_id": "DE*ABC*E123456*1"})
    status, answer = await post(messages, delete.to_bytes())
    assert status == 503
    assert "no queue is bound" in answer["error"]

    status, listing = await get(f"{bus.http_url}/v1/dead-letters")
    assert status == 200
    # The listing leaves the bodies out (they may be megabytes); each one is by its id.
    assert not any("body" in d for d in listing["dead_letters"])
    assert [d["size"] for d in listing["dead_letters"]] == [len(wrong), 9, len(unknown)]
    bodies = [
        (await get(f"{bus.http_url}/v1/dead-letters/{d['id']}"))[1]["body"]
        for d in listing["dead_letters"]
    ]
    assert bodies == [wrong.decode(), "{not json", unknown.decode()]
    # Kept with a reason that names the field at fault (the root, for what is not JSON).
    reasons = [d["reason"] for d in listing["dead_letters"]]
    for reason, start in zip(
        reasons,
        ["ContractError: /data/status: ", "ContractError: is not valid JSON",
         "ContractError: /type: is not a known message type"],
        strict=True,
    ):
        assert reason.startswith(start), reasons
    assert all(d["queue"] == "http-api" for d in listing["dead_letters"])
    first = listing["dead_letters"][0]["id"]
    assert (await get(f"{bus.http_url}/v1/dead-letters/{first}"))[1]["body"] == wrong.decode()
    assert (await get(f"{bus.http_url}/v1/dead-letters/nope"))[0] == 404
    assert got.ids == [good.id]


async def test_what_the_http_api_answered_202_survives_a_kill_9(embedded_kit: BusKit) -> None:
    kit = embedded_kit
    spec = QueueSpec(kit.queue("status"), bindings=(EVSE_STATUS,))
    sent = [status_event() for _ in range(20)]
    worker = await start_worker(kit, "serve", spec.name)
    try:
        url = await read_line(worker, "LISTENING ")
        for envelope in sent:
            answer = await post(f"{url}/v1/messages", envelope.to_bytes())
            assert answer == (202, {"id": envelope.id, "routing_key": EVSE_STATUS})
    finally:
        worker.kill()  # SIGKILL right after the last 202
        await worker.wait()

    bus = await kit.connected()
    got = Collector()
    await bus.consume(spec, got)
    await got.wait_for(len(sent))
    assert sorted(got.ids) == sorted(e.id for e in sent)


class Backend:
    """A CPO backend's webhook, on a real HTTP server."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answer_now = asyncio.Event()
        self.answer_now.set()
        self.status = 200
        self.failures = 0
        self.correlate = True
        self._changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        """Answer a command with a reply envelope, take anything else with 204."""
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        self._changed.set()
        await self.answer_now.wait()
        if self.failures:
            self.failures -= 1
            return web.Response(status=503, text="backend is restarting")
        if self.status != 200:
            return web.Response(status=self.status, text="backend says no")
        envelope = parse_envelope(body)
        if envelope.spec.kind is not Kind.COMMAND:
            return web.Response(status=204)
        reply = remote_start_reply(envelope if self.correlate else remote_start())
        return web.Response(body=reply.to_bytes(), content_type="application/cloudevents+json")

    async def wait_for(self, count: int) -> None:
        """Wait until ``count`` requests arrived."""
        async with asyncio.timeout(WAIT):
            while len(self.requests) < count:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def backend(aiohttp_server: AiohttpServer) -> tuple[Backend, str]:
    """The backend and its webhook URL."""
    made = Backend()
    app = web.Application()
    app.router.add_post("/commands", made.handle)
    server = await aiohttp_server(app)
    return made, str(server.make_url("/commands"))


async def test_webhook_response_is_the_reply(
    embedded_kit: BusKit, backend: tuple[Backend, str]
) -> None:
    webhook, url = backend
    bus = await embedded_kit.connected(webhook_url=url)
    command = remote_start()

    reply = await bus.request(REMOTE_START, command, timeout=WAIT)

    assert reply.type is MessageType.REMOTE_START_REPLY
    assert reply.correlation_id == command.id
    [(headers, body)] = webhook.requests
    assert parse_envelope(body) == command
    assert headers["Content-Type"] == "application/cloudevents+json"
    assert headers["X-Correlation-ID"] == command.id
    assert headers["X-Routing-Key"] == REMOTE_START


async def test_webhook_too_slow_times_out_and_its_late_reply_is_kept(
    embedded_kit: BusKit, backend: tuple[Backend, str]
) -> None:
    webhook, url = backend
    webhook.answer_now.clear()
    bus = await embedded_kit.connected(webhook_url=url)
    command = remote_start()

    with pytest.raises(RequestTimeout):
        await bus.request(REMOTE_START, command, timeout=0.5)
    webhook.answer_now.set()

    [letter] = await dead_letters_where(bus, "the late webhook reply", queue=LATE_REPLIES)
    assert letter.reason.startswith("late reply"), letter.reason
    assert parse_envelope(letter.body).correlation_id == command.id
    assert letter.routing_key == REMOTE_START


async def test_webhook_errors_and_foreign_replies_are_reported(
    embedded_kit: BusKit, backend: tuple[Backend, str]
) -> None:
    webhook, url = backend
    bus = await embedded_kit.connected(webhook_url=url)

    webhook.status = 503
    with pytest.raises(RequestFailed, match="HTTP 503"):
        await bus.request(REMOTE_START, remote_start(), timeout=WAIT)

    webhook.status = 200
    webhook.correlate = False
    with pytest.raises(ContractError, match=r"^/correlationid: must be the request's id"):
        await bus.request(REMOTE_START, remote_start(), timeout=WAIT)


async def test_nothing_listening_on_the_webhook_is_a_transient_bus_error(
    embedded_kit: BusKit, unused_tcp_port: int
) -> None:
    bus = await embedded_kit.connected(webhook_url=f"http://127.0.0.1:{unused_tcp_port}/x")
    with pytest.raises(BusError, match="the webhook at") as caught:
        await bus.request(REMOTE_START, remote_start(), timeout=WAIT)
    assert caught.value.transient


AUTHORIZE_START = str(MessageType.AUTHORIZATION_START_REQUEST)


async def authorize(message: IncomingMessage) -> Envelope:
    """The connector's side of an authorization: refuse every card."""
    return make_reply(
        message.envelope, {"authorization_status": "NotAuthorized", "status_code": "102"}
    )


def authorize_start_request() -> Envelope:
    """A valid authorize start request from the backend."""
    return make_envelope(
        MessageType.AUTHORIZATION_START_REQUEST,
        {"evse_id": "DE*ABC*E123456*1",
         "identification": {"kind": "rfid_mifare_family", "uid": "1234ABCD"}},
        deadline=datetime.now(UTC) + timedelta(seconds=WAIT),
    )


async def test_a_request_the_backend_posted_is_answered_on_the_webhook(
    embedded_kit: BusKit, backend: tuple[Backend, str]
) -> None:
    webhook, url = backend
    bus = await embedded_kit.connected(serve=True, webhook_url=url)
    assert isinstance(bus, EmbeddedBus)
    await bus.serve(QueueSpec(embedded_kit.queue("auth"), bindings=(AUTHORIZE_START,)), authorize)
    request = authorize_start_request()
    answer = await post(f"{bus.http_url}/v1/messages", request.to_bytes())
    assert answer == (202, {"id": request.id, "routing_key": AUTHORIZE_START})

    await webhook.wait_for(1)
    [(headers, body)] = webhook.requests
    reply = parse_envelope(body)
    assert reply.type is MessageType.AUTHORIZATION_START_REPLY
    assert reply.correlation_id == request.id
    assert reply.data == {"authorization_status": "NotAuthorized", "status_code": "102"}
    assert headers["X-Correlation-ID"] == request.id
    assert headers["X-Routing-Key"] == str(MessageType.AUTHORIZATION_START_REPLY)
    assert await bus.list_dead_letters() == []


async def results(url: str, after: str = "0", limit: int | None = None) -> dict[str, Any]:
    """One page of GET /v1/results."""
    query = f"?after={after}" + (f"&limit={limit}" if limit is not None else "")
    status, page = await get(f"{url}/v1/results{query}")
    assert status == 200, page
    return page


async def test_without_a_webhook_the_backend_reads_replies_and_results_by_cursor(
    embedded_kit: BusKit,
) -> None:
    bus = await embedded_kit.connected(serve=True)  # no webhook_url configured
    assert isinstance(bus, EmbeddedBus)
    assert bus.http_url is not None
    await bus.serve(QueueSpec(embedded_kit.queue("auth"), bindings=(AUTHORIZE_START,)), authorize)
    request = authorize_start_request()
    assert (await post(f"{bus.http_url}/v1/messages", request.to_bytes()))[0] == 202
    # With no queue for results and no webhook, a result is kept for reading, not refused.
    result = make_delivery_result(status_event().id, Outcome.ACCEPTED, status_code="000")
    await bus.publish(str(MessageType.DELIVERY_RESULT), result)

    async def both() -> dict[str, Any] | None:
        page = await results(bus.http_url or "")
        return page if len(page["results"]) == 2 else None

    page = await eventually(both, "the reply and the result")
    by_type = {item["type"]: item for item in page["results"]}
    reply = by_type[str(MessageType.AUTHORIZATION_START_REPLY)]
    assert reply["correlation_id"] == request.id
    assert parse_envelope(json.dumps(reply["message"])).data == {
        "authorization_status": "NotAuthorized", "status_code": "102"
    }
    assert by_type[str(MessageType.DELIVERY_RESULT)]["message"] == result.to_dict()
    assert page["more"] is False
    assert page["gap"] is False
    assert page["next"] == page["results"][-1]["cursor"]

    # From the cursor on, only what is new; a page of one says more follows.
    assert (await results(bus.http_url, page["next"]))["results"] == []
    later = make_delivery_result(status_event().id, Outcome.DROPPED, reason="superseded")
    await bus.publish(str(MessageType.DELIVERY_RESULT), later)
    [new] = (await results(bus.http_url, page["next"]))["results"]
    assert new["message"] == later.to_dict()
    first = await results(bus.http_url, limit=1)
    assert [item["cursor"] for item in first["results"]] == [page["results"][0]["cursor"]]
    assert first["more"] is True
    assert await bus.list_dead_letters() == []

    for query in ("after=-1", "after=abc", "limit=0", "limit=1001", "limit=x"):
        status, answer = await get(f"{bus.http_url}/v1/results?{query}")
        assert status == 400, query
        assert answer["error"].startswith(query.partition("=")[0] + ": "), answer


async def test_results_past_their_retention_are_gone_and_the_gap_is_said(
    embedded_kit: BusKit,
) -> None:
    writer = await embedded_kit.connected()
    result = make_delivery_result(status_event().id, Outcome.ACCEPTED, status_code="000")
    await writer.publish(str(MessageType.DELIVERY_RESULT), result)
    # Another process on the same file keeps results for no time at all: at its start
    # it deletes what is older.
    reader = await embedded_kit.connected(serve=True, results_retention_seconds=1e-9)
    assert isinstance(reader, EmbeddedBus)
    assert reader.http_url is not None

    page = await results(reader.http_url)
    assert page["results"] == []
    assert page["gap"] is True  # the backend missed one: it should say so, not stay silent
    # The cursor moves past what is gone: asking from there again, nothing is missing.
    again = await results(reader.http_url, page["next"])
    assert (again["results"], again["gap"]) == ([], False)
    # Deleted from the file, for the writer too.
    assert isinstance(writer, EmbeddedBus)
    gone = await writer.results_after(0, 10)
    assert (gone.results, gone.gap) == ([], True)


async def test_results_for_the_backend_are_posted_to_the_webhook_with_retries(
    embedded_kit: BusKit, backend: tuple[Backend, str]
) -> None:
    webhook, url = backend
    webhook.failures = 2  # the backend is restarting: 503, 503, then 204
    bus = await embedded_kit.connected(serve=True, webhook_url=url)
    result = make_delivery_result(status_event().id, Outcome.ACCEPTED, status_code="000")

    await bus.publish(str(MessageType.DELIVERY_RESULT), result)
    await webhook.wait_for(3)

    assert [parse_envelope(body) for _, body in webhook.requests] == [result] * 3
    assert webhook.requests[0][0]["X-Routing-Key"] == str(MessageType.DELIVERY_RESULT)
    assert await bus.list_dead_letters() == []


async def test_result_the_webhook_keeps_refusing_ends_in_the_dead_letters(
    embedded_kit: BusKit, backend: tuple[Backend, str]
) -> None:
    webhook, url = backend
    webhook.status = 422
    bus = await embedded_kit.connected(serve=True, webhook_url=url)
    result = make_delivery_result("m-1", Outcome.REJECTED, status_code="022", reason="bad ID")

    await bus.publish(str(MessageType.DELIVERY_RESULT), result)

    [letter] = await dead_letters_where(bus, "the refused result")
    assert letter.reason == (
        "gave up after 3 retries: RetryLater: the webhook answered HTTP 422: backend says no"
    )
    assert letter.queue == "backend.results"
    assert len(webhook.requests) == 4  # the first try and one per retry delay
    assert webhook.requests[0][0]["X-Correlation-ID"] == "m-1"
