"""The routes Hubject calls, and the gate in front of them. Thin: decode → command → encode.

Each of the four operations Hubject sends to the CPO (the operation table's
``Direction.HUBJECT_TO_CPO`` rows, behind ``inbound.path_prefix``) is answered with HTTP 200
and an ``eRoamingAcknowledgement``, also when the request is refused for its content: an
invalid body or a ProviderID in the body other than the path's gets ``Result`` false with
022 and the field at fault (OICP answers data errors in the message, never with a 5xx).

The gate (``Handlers.gate``, the one middleware) runs before any route and answers, with an
OICP-shaped body too:

* 403 when the source address is not in ``inbound.allow_ips`` or, behind a proxy, the client
  certificate header is missing or untrusted (StatusCode 017, "Unauthorized Access");
* 404 for a path that is no operation, 405 for another method than POST (022);
* 413 for a body over ``inbound.max_body_bytes``, 408 for one not read within
  ``inbound.read_timeout_seconds`` of the request's first byte (022; the connection is
  closed);
* anything unexpected is logged and answered 200 with ``Result`` false and
  ``inbound.timeout_status_code``: never a 5xx.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from aiohttp import web

from hubject_connector.config import InboundConfig
from hubject_connector.inbound.commands import Commands
from hubject_connector.inbound.connection import Connections
from hubject_connector.inbound.metrics import UNKNOWN_OPERATION, InboundMetrics
from hubject_connector.inbound.tls import HeaderCertificateError, ServerTls
from hubject_connector.oicp import codec, patterns
from hubject_connector.oicp.codec import Issue, OicpValidationError
from hubject_connector.oicp.common import Acknowledgement
from hubject_connector.oicp.messages import decode_message
from hubject_connector.oicp.operations import OPERATIONS, Direction, Operation
from hubject_connector.oicp.remote import (
    AuthorizeRemoteReservationStart,
    AuthorizeRemoteReservationStop,
    AuthorizeRemoteStart,
    AuthorizeRemoteStop,
)
from hubject_connector.translate import inbound as translate

log = structlog.get_logger(__name__)

#: The operations served: those Hubject calls on the CPO.
INBOUND_OPERATIONS: Final[tuple[Operation, ...]] = tuple(
    op for op in OPERATIONS.values() if op.direction is Direction.HUBJECT_TO_CPO
)
#: The media type of every answer (OICP: UTF-8 JSON).
CONTENT_TYPE: Final = "application/json; charset=utf-8"

# Per-request facts the gate hands to the route.
_READ_STARTED: Final = web.RequestKey("inbound_read_started", float)
_RECEIVED: Final = web.RequestKey("inbound_received", datetime)
_ARRIVED: Final = web.RequestKey("inbound_arrived", float)
# The OICP status code answered, for the metrics.
_ANSWERED: Final = web.RequestKey("inbound_answered", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer(request: web.Request, ack: Acknowledgement, *, status: int = 200) -> web.Response:
    """The HTTP response carrying ``ack`` (UTF-8 JSON, as OICP wants)."""
    request[_ANSWERED] = ack.status_code.code
    return web.Response(body=codec.encode(ack), status=status,
                        headers={"Content-Type": CONTENT_TYPE})


class Handlers:
    """The gate and the four routes of one server."""

    def __init__(
        self,
        config: InboundConfig,
        *,
        tls: ServerTls,
        commands: Commands,
        metrics: InboundMetrics,
        connections: Connections,
    ) -> None:
        self._config = config
        self._tls = tls
        self._commands = commands
        self._metrics = metrics
        self._connections = connections
        self._allowed = tuple(ipaddress.ip_network(n, strict=False) for n in config.allow_ips)
        self._paths = ", ".join(config.path_prefix + op.path for op in INBOUND_OPERATIONS)

    def application(self) -> web.Application:
        """The aiohttp application: the gate and one POST route per operation."""
        app = web.Application(middlewares=[self.gate],
                              client_max_size=self._config.max_body_bytes)
        for op in INBOUND_OPERATIONS:
            app.router.add_post(self._config.path_prefix + op.path, self._route(op), name=op.name)
        return app

    # The gate.

    @web.middleware
    async def gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refuse what must not reach an operation; count and time every answer."""
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        connection = self._connections.for_transport(request.transport)
        request[_ARRIVED] = arrived
        request[_READ_STARTED] = connection.request_started() if connection else arrived
        request[_RECEIVED] = datetime.now(UTC)
        route = request.match_info.route.name
        operation = route if route in OPERATIONS else UNKNOWN_OPERATION
        try:
            response = await self._pass(request, handler, operation)
        except asyncio.CancelledError:
            raise
        except Exception:  # never a 5xx: an answer Hubject can read, and a log line
            log.exception("inbound.request_failed", operation=operation, path=request.path)
            response = answer(request, translate.refusal(
                self._config.timeout_status_code, "the request could not be handled"))
        finally:
            if connection is not None:
                connection.request_finished()
        self._metrics.requests.labels(
            operation=operation, http_status=str(response.status),
            status_code=request.get(_ANSWERED, "none"),
        ).inc()
        self._metrics.latency.labels(operation=operation).observe(loop.time() - arrived)
        return response

    async def _pass(self, request: web.Request, handler: Handler,
                    operation: str) -> web.StreamResponse:
        refused = self._check_source(request)
        if refused is not None:
            return refused
        exception = request.match_info.http_exception
        if exception is not None:
            return self._no_route(request, exception)
        return await handler(request)

    def _check_source(self, request: web.Request) -> web.Response | None:
        if self._allowed and not self._address_allowed(request.remote):
            log.warning("inbound.refused", reason="ip_not_allowed", peer=request.remote,
                        path=request.path)
            return self._refuse(request, 403, "ip_not_allowed", "017",
                                "the source address is not allowed")
        header = self._tls.header
        if header is not None:
            try:
                header.verify(request.headers.get(header.header))
            except HeaderCertificateError as exc:
                log.warning("inbound.refused", reason=exc.reason, peer=request.remote,
                            error=str(exc))
                return self._refuse(request, 403, exc.reason, "017",
                                    "no trusted client certificate")
        return None

    def _address_allowed(self, remote: str | None) -> bool:
        if remote is None:
            return False
        try:
            address = ipaddress.ip_address(remote)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._allowed)

    def _no_route(self, request: web.Request, exception: web.HTTPException) -> web.Response:
        if exception.status == 405:
            response = self._refuse(request, 405, "method_not_allowed", "022",
                                    f"only POST is answered at {request.path}")
            response.headers["Allow"] = "POST"
            return response
        return self._refuse(
            request, 404, "unknown_path", "022",
            f"no OICP operation at {request.method} {request.path}; operations: {self._paths}",
        )

    def _refuse(self, request: web.Request, status: int, reason: str, code: str,
                info: str) -> web.Response:
        self._metrics.refused_requests.labels(reason=reason).inc()
        return answer(request, translate.refusal(code, info), status=status)

    # The routes.

    def _route(self, operation: Operation) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._operation(request, operation)

        return handle

    async def _operation(self, request: web.Request, operation: Operation) -> web.Response:
        body = await self._read_body(request)
        if isinstance(body, web.Response):
            return body
        raw = _lenient(body)
        session_id = raw.get("SessionID") if isinstance(raw, dict) else None
        try:
            decoded = decode_message(operation.request, body if raw is None else raw)
        except OicpValidationError as exc:
            log.info("inbound.invalid_request", operation=operation.name, issues=str(exc))
            return answer(request, translate.data_error(exc.issues, session_id=session_id))
        assert isinstance(decoded, _REQUEST_TYPES)
        issues = _provider_issues(request.match_info["providerID"], decoded.provider_id)
        if issues:
            log.info("inbound.invalid_request", operation=operation.name,
                     issues="; ".join(map(str, issues)))
            return answer(request, translate.data_error(issues, session_id=session_id))
        deadline = request[_ARRIVED] + self._config.reply_deadline_seconds
        ack = await self._commands.answer(
            operation.name, decoded, received=request[_RECEIVED], deadline=deadline
        )
        log.info("inbound.answered", operation=operation.name, session_id=decoded.session_id,
                 evse_id=decoded.evse_id, result=ack.result, status_code=ack.status_code.code)
        return answer(request, ack)

    async def _read_body(self, request: web.Request) -> bytes | web.Response:
        limit = self._config.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            return self._closing(self._refuse(
                request, 413, "body_too_large", "022",
                f"the body of {length} bytes is over the limit of {limit} bytes"))
        deadline = request[_READ_STARTED] + self._config.read_timeout_seconds
        try:
            async with asyncio.timeout_at(deadline):
                return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._closing(self._refuse(
                request, 413, "body_too_large", "022",
                f"the body is over the limit of {limit} bytes"))
        except TimeoutError:
            log.info("inbound.read_timeout", peer=request.remote, path=request.path)
            return self._closing(self._refuse(
                request, 408, "read_timeout", "022",
                f"the request was not read within {self._config.read_timeout_seconds:g} s"))

    @staticmethod
    def _closing(response: web.Response) -> web.Response:
        # The rest of the body is not read: the connection cannot carry another request.
        response.force_close()
        return response


_REQUEST_TYPES: Final = (
    AuthorizeRemoteStart,
    AuthorizeRemoteStop,
    AuthorizeRemoteReservationStart,
    AuthorizeRemoteReservationStop,
)


def _provider_issues(in_path: str, in_body: str) -> list[Issue]:
    """The path's ProviderID must be valid and the body's (separators and case aside)."""
    if not patterns.matches("ProviderID", in_path):
        return [Issue("/providerID", f"the path's providerID {in_path!r} does not match the "
                                     "ProviderID pattern, e.g. 'DE-8PS'")]
    if _compact(in_path) != _compact(in_body):
        return [Issue("/ProviderID", f"must be the providerID of the path ({in_path!r}), "
                                     f"not {in_body!r}")]
    return []


def _compact(provider_id: str) -> str:
    # ProviderIDs are written "DE-8PS", "DE*8PS" or "DE8PS" (ISO/IEC 15118 and DIN forms).
    return provider_id.replace("-", "").replace("*", "").upper()


def _lenient(body: bytes) -> Any:
    try:
        return codec.parse_json(body)
    except OicpValidationError:
        return None

