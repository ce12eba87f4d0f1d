"""The embedded bus's HTTP API: how a backend without a broker talks to the connector.

``POST /v1/messages`` takes one CloudEvents JSON message (structured mode), checks it
against the message contract and stores it durably before answering:

* 202 ``{"id": ..., "routing_key": ..., "queues": [...]}``: committed to disk;
* 400 ``{"error": "<pointer>: <rule>", "dead_letter_id": ...}``: refused, and kept as a
  dead letter with that reason, so that it can be looked at, fixed and replayed;
* 503 ``{"error": ...}``: no queue takes this type yet (the connector is starting);
  nothing was stored, send it again.

``GET /v1/dead-letters`` and ``GET /v1/dead-letters/{id}`` show the dead letters.
Commands for the backend go the other way, to the configured webhook, and so do the
replies to the backend's requests (authorization) and the delivery results.
"""

from __future__ import annotations

import base64
from typing import Any, Final

from aiohttp import web

from hubject_connector.bus.base import DeadLetter, DeadLetterNotFound, Unroutable, describe
from hubject_connector.bus.contract import ContractError, Kind, parse_envelope
from hubject_connector.bus.embedded import EmbeddedBus

BUS: Final = web.AppKey("bus", EmbeddedBus)
#: Larger bodies are refused with 413 (a full EVSE data load fits well within this).
MAX_BODY_BYTES: Final = 16 * 1024 * 1024


def routing_key_of(envelope: Any) -> str:
    """The routing key of an envelope: its type (an enum's value or the string)."""
    kind = envelope.type
    return str(getattr(kind, "value", kind))


async def post_message(request: web.Request) -> web.Response:
    """Validate and durably store one message from the backend."""
    bus = request.app[BUS]
    body = await request.read()
    headers = {"content-type": request.content_type}
    try:
        envelope = parse_envelope(body)
    except ContractError as exc:
        reason, error = describe(exc)
        dead_letter_id = await bus.keep_invalid(body, headers, reason, error)
        return web.json_response(
            {"error": str(exc), "dead_letter_id": dead_letter_id}, status=400
        )
    routing_key = routing_key_of(envelope)
    try:
        if envelope.spec.kind is Kind.REQUEST:
            # An authorization request: the reply goes to the webhook.
            message_id = await bus.accept_request(routing_key, body, envelope)
        else:
            message_id = await bus.publish(routing_key, body, message_id=str(envelope.id))
    except Unroutable as exc:
        return web.json_response({"error": str(exc)}, status=503, headers={"Retry-After": "5"})
    return web.json_response({"id": message_id, "routing_key": routing_key}, status=202)


def _letter_json(letter: DeadLetter) -> dict[str, Any]:
    try:
        text: str | None = letter.body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        "id": letter.id,
        "queue": letter.queue,
        "routing_key": letter.routing_key,
        "reason": letter.reason,
        "error": letter.error,
        "message_id": letter.message_id,
        "retries": letter.retries,
        "dead_lettered_at": (
            letter.dead_lettered_at.isoformat() if letter.dead_lettered_at else None
        ),
        "headers": dict(letter.headers),
        "body": text,
        "body_base64": base64.b64encode(letter.body).decode("ascii"),
    }


async def list_dead_letters(request: web.Request) -> web.Response:
    """The oldest dead letters (``?limit=``, default 100)."""
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        return web.json_response({"error": "limit must be an integer"}, status=400)
    letters = await request.app[BUS].list_dead_letters(limit=max(1, min(limit, 10_000)))
    return web.json_response({"dead_letters": [_letter_json(letter) for letter in letters]})


async def get_dead_letter(request: web.Request) -> web.Response:
    """One dead letter."""
    try:
        letter = await request.app[BUS].get_dead_letter(request.match_info["id"])
    except DeadLetterNotFound as exc:
        return web.json_response({"error": str(exc)}, status=404)
    return web.json_response(_letter_json(letter))


def http_api(bus: EmbeddedBus) -> web.Application:
    """The aiohttp application of the embedded bus's HTTP API."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[BUS] = bus
    app.router.add_post("/v1/messages", post_message)
    app.router.add_get("/v1/dead-letters", list_dead_letters)
    app.router.add_get("/v1/dead-letters/{id}", get_dead_letter)
    return app
