"""The embedded bus's HTTP API: how a backend without a broker talks to the connector.

What passes through: HTTP requests from the backend, each answered with JSON. The room
only checks and translates; storing is the bus's (:class:`EmbeddedBus`, imported here;
the bus never imports this module: ``build_bus`` hands it :class:`HttpApi` as a factory).

* ``POST /v1/messages`` takes one CloudEvents JSON message (structured mode), checks it
  against the message contract and stores it durably before answering:

  - 202 ``{"id": ..., "routing_key": ...}``: committed to disk (the same ``id`` posted
    again for the same queue is stored once, and answered 202 again);
  - 400 ``{"error": "<pointer>: <rule>", "dead_letter_id": ...}``: refused, and kept as a
    dead letter with that reason; hostile bodies (nested 100,000 deep, unpaired
    surrogates, megabyte keys) are refused the same way, never with a 500;
  - 413: larger than :data:`MAX_BODY_BYTES`;
  - 503 ``{"error": ...}`` with ``Retry-After``: not stored (no queue takes this type yet,
    or the file failed), send it again.

  Bodies above :data:`OFF_LOOP_BYTES` are parsed and validated on a worker thread, so a
  16 MiB message does not hold up the small ones behind it.
* ``GET /v1/results?after=<cursor>&limit=`` pages through the delivery results and the
  replies to the backend's requests, kept for ``results_retention_seconds``.
* ``GET /v1/dead-letters?after=<cursor>&limit=`` pages through the dead letters, without
  their bodies; ``GET /v1/dead-letters/{id}`` shows one with its body.

With ``bus.embedded.auth_token_file`` set, every request needs ``Authorization: Bearer
<token>`` (compared in constant time); others get 401. Listening anywhere but on a
loopback address without a token is refused at start.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import ipaddress
import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, Final

import structlog
from aiohttp import web

from hubject_connector.bus.base import DeadLetter, DeadLetterNotFound, Unroutable, describe
from hubject_connector.bus.contract import (
    ContractError,
    ContractIssue,
    Envelope,
    Kind,
    parse_envelope,
)
from hubject_connector.bus.embedded import EmbeddedBus
from hubject_connector.bus.embedded_store import DeadLetterSummary, StoredResult
from hubject_connector.config import EmbeddedBusConfig
from hubject_connector.errors import BusError

log = structlog.get_logger(__name__)

BUS: Final = web.AppKey("bus", EmbeddedBus)
TOKEN: Final = web.AppKey("token", bytes)
#: Larger bodies are refused with 413 (a full EVSE data load fits well within this).
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
#: Bodies larger than this are parsed and validated on a worker thread.
OFF_LOOP_BYTES: Final = 64 * 1024
#: Most dead letters in one page of the listing.
MAX_DEAD_LETTER_PAGE: Final = 100
#: Most results in one page.
MAX_RESULT_PAGE: Final = 1000
DEFAULT_PAGE: Final = 100
#: How long a client waits before sending again after a 503.
RETRY_AFTER_SECONDS: Final = "5"


class HttpApiError(BusError):
    """The HTTP API cannot start as configured (a setting must change first)."""

    transient = False


def read_token(config: EmbeddedBusConfig) -> bytes | None:
    """The bearer token from ``auth_token_file`` (None when unset); ``HttpApiError``."""
    path = config.auth_token_file
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise HttpApiError(f"bus.embedded.auth_token_file: cannot read {path}: {exc}") from exc
    if not token:
        raise HttpApiError(f"bus.embedded.auth_token_file: {path} is empty")
    return token.encode("utf-8")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``localhost``, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def routing_key_of(envelope: Envelope) -> str:
    """The routing key of an envelope: its type."""
    return str(envelope.type)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
    return web.json_response({"error": message, **extra}, status=status, headers=headers)


@web.middleware
async def _authenticate(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    token = request.app.get(TOKEN)
    if token is not None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # compare_digest: the time taken does not tell how much of a guess was right.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8", "replace"), token
        ):
            response = _error(401, "a valid 'Authorization: Bearer <token>' header is required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="hubject-connector"'
            return response
    return await handler(request)


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every answer is JSON, and a failure of the store is a 503, not a 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason)
    except (BusError, sqlite3.Error) as exc:  # the file failed, the bus is closing
        log.error("bus.http_api_failed", path=request.path, error=repr(exc))
        return _error(503, f"the embedded bus failed, nothing was stored: {exc}")


async def _parse(body: bytes) -> Envelope:
    if len(body) > OFF_LOOP_BYTES:
        return await asyncio.to_thread(parse_envelope, body)
    return parse_envelope(body)


async def post_message(request: web.Request) -> web.Response:
    """Validate and durably store one message from the backend."""
    bus = request.app[BUS]
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"the message is larger than {MAX_BODY_BYTES} bytes")
    headers = {"content-type": request.content_type}
    try:
        envelope = await _parse(body)
    except ContractError as exc:
        reason, error = describe(exc)
        dead_letter_id = await bus.keep_invalid(body, headers, reason, error)
        return _error(400, str(exc), dead_letter_id=dead_letter_id)
    except Exception as exc:  # a body no rule foresaw is still the sender's
        # A parser fault on some hostile input: refused as the sender's, kept, never a 500.
        log.warning("bus.http_api_unparsable", error=repr(exc))
        refused = ContractError([ContractIssue("", "cannot be read as a message")])
        reason, error = describe(refused)
        dead_letter_id = await bus.keep_invalid(body, headers, reason, error)
        return _error(400, str(refused), dead_letter_id=dead_letter_id)
    routing_key = routing_key_of(envelope)
    try:
        if envelope.spec.kind is Kind.REQUEST:
            # An authorization request: its reply goes where results go.
            message_id = await bus.accept_request(routing_key, body, envelope)
        else:
            message_id = await bus.publish(routing_key, body, message_id=envelope.id)
    except Unroutable as exc:
        return _error(503, str(exc))
    return web.json_response({"id": message_id, "routing_key": routing_key}, status=202)


def _page_arguments(request: web.Request, most: int) -> tuple[int, int] | web.Response:
    """``after`` (a cursor, default 0) and ``limit`` (1 to ``most``) or a 400 naming them."""
    raw_after = request.query.get("after", "0")
    raw_limit = request.query.get("limit", str(min(DEFAULT_PAGE, most)))
    if not raw_after.isdigit() or len(raw_after) > 18:
        return _error(400, f"after: must be a cursor from an earlier answer, not {raw_after!r}")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= most:
        return _error(400, f"limit: must be an integer from 1 to {most}, not {raw_limit!r}")
    return int(raw_after), int(raw_limit)


def _summary_json(letter: DeadLetterSummary) -> dict[str, Any]:
    return {
        "id": letter.id,
        "cursor": str(letter.cursor),
        "queue": letter.queue,
        "routing_key": letter.routing_key,
        "reason": letter.reason,
        "error": letter.error,
        "message_id": letter.message_id,
        "retries": letter.retries,
        "dead_lettered_at": letter.dead_lettered_at.isoformat(),
        "headers": dict(letter.headers),
        "size": letter.size,
    }


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
    """One page of dead letters, oldest first, without bodies (``?after=&limit=``)."""
    arguments = _page_arguments(request, MAX_DEAD_LETTER_PAGE)
    if isinstance(arguments, web.Response):
        return arguments
    page = await request.app[BUS].dead_letter_page(*arguments)
    return web.json_response(
        {
            "dead_letters": [_summary_json(letter) for letter in page.letters],
            "next": str(page.next),
            "more": page.more,
        }
    )


async def get_dead_letter(request: web.Request) -> web.Response:
    """One dead letter, with its body."""
    try:
        letter = await request.app[BUS].get_dead_letter(request.match_info["id"])
    except DeadLetterNotFound as exc:
        return _error(404, str(exc))
    return web.json_response(_letter_json(letter))


def _result_json(result: StoredResult) -> dict[str, Any]:
    try:
        message = json.loads(result.body)
    except ValueError:  # the connector only keeps envelopes; never fail the page for one
        message = None
    return {
        "cursor": str(result.cursor),
        "type": result.routing_key,
        "id": result.id,
        "correlation_id": result.correlation_id,
        "stored_at": result.stored_at.isoformat(),
        "message": message,
    }


async def list_results(request: web.Request) -> web.Response:
    """Delivery results and replies for the backend after ``?after=`` (``limit``)."""
    arguments = _page_arguments(request, MAX_RESULT_PAGE)
    if isinstance(arguments, web.Response):
        return arguments
    page = await request.app[BUS].results_after(*arguments)
    return web.json_response(
        {
            "results": [_result_json(result) for result in page.results],
            "next": str(page.next),
            "more": page.more,
            "gap": page.gap,
        }
    )


def http_api(bus: EmbeddedBus, *, token: bytes | None = None) -> web.Application:
    """The aiohttp application of the embedded bus's HTTP API (``token``: bearer auth)."""
    app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=[_json_errors, _authenticate]
    )
    app[BUS] = bus
    if token is not None:
        app[TOKEN] = token
    app.router.add_post("/v1/messages", post_message)
    app.router.add_get("/v1/results", list_results)
    app.router.add_get("/v1/dead-letters", list_dead_letters)
    app.router.add_get("/v1/dead-letters/{id}", get_dead_letter)
    return app


class HttpApi:
    """The HTTP API of one embedded bus, listening on ``http_host:http_port``.

    Given to the bus as its ``http_api`` factory: the bus starts it at connect (after its
    queues are declared) and stops it at close.
    """

    def __init__(self, bus: EmbeddedBus) -> None:
        self.bus = bus
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        """Listen; the URL. Refuses a non-loopback address without a token."""
        config = self.bus.config
        token = read_token(config)
        if token is None and not is_loopback(config.http_host):
            raise HttpApiError(
                "bus.embedded.auth_token_file: required when bus.embedded.http_host"
                f" ({config.http_host!r}) is not a loopback address; without a token anyone"
                f" who can reach port {config.http_port} could post messages and read the"
                " results and dead letters"
            )
        runner = web.AppRunner(http_api(self.bus, token=token), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, config.http_host, config.http_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise BusError(
                f"the embedded bus's HTTP API cannot listen on {config.http_host}:"
                f"{config.http_port}: {exc.strerror or exc}"
            ) from exc
        self._runner = runner
        host, port = runner.addresses[0][:2]
        if ":" in str(host):
            host = f"[{host}]"
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        """Stop listening (requests in flight are answered first)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
