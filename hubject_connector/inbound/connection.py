"""One client connection of the inbound server: TLS handshake, then HTTP, with read deadlines.

The listening socket is plain TCP; each accepted connection runs its TLS handshake through
``loop.start_tls`` with the context in force at that moment, which is how a rotated server
certificate reaches new connections without a restart (``tls.ServerTls``) and how a
refused handshake is seen, counted and logged with its reason (asyncio's own TLS server
drops those silently). Once the handshake is done, the connection hands its bytes to an
aiohttp request handler and stays in between as a thin forwarder that keeps one clock:

* a request must be read completely within ``read_timeout_seconds`` of its first byte
  (of the handshake's end, for the first request), so a slow client cannot hold a
  connection open by trickling its headers or body; the header part is enforced here,
  the body part by the route (``handlers``), from the same start time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from hubject_connector.inbound.metrics import InboundMetrics
from hubject_connector.inbound.tls import ServerTls, describe_refusal, refusal_reason

if TYPE_CHECKING:
    from aiohttp.web_protocol import RequestHandler

log = structlog.get_logger(__name__)


class Connections:
    """Every open connection of one server, found by the transport a request arrived on."""

    def __init__(self) -> None:
        self._by_transport: dict[asyncio.BaseTransport, Connection] = {}
        self._all: set[Connection] = set()

    def add(self, connection: Connection) -> None:
        """Track a new connection."""
        self._all.add(connection)

    def attach(self, connection: Connection, transport: asyncio.BaseTransport) -> None:
        """Remember which transport a connection's requests arrive on."""
        self._by_transport[transport] = connection

    def discard(self, connection: Connection) -> None:
        """Forget a closed connection."""
        self._all.discard(connection)
        if connection.transport is not None:
            self._by_transport.pop(connection.transport, None)

    def for_transport(self, transport: asyncio.BaseTransport | None) -> Connection | None:
        """The connection of a request's transport."""
        if transport is None:
            return None
        return self._by_transport.get(transport)

    def abort_handshakes(self) -> None:
        """Drop every connection still in its TLS handshake (the server is stopping)."""
        for connection in list(self._all):
            connection.abort_handshake()

    def __len__(self) -> int:
        return len(self._all)


class Connection(asyncio.Protocol):
    """One accepted connection (see the module doc)."""

    def __init__(
        self,
        *,
        handler_factory: Callable[[], RequestHandler],
        connections: Connections,
        tls: ServerTls,
        read_timeout: float,
        metrics: InboundMetrics,
    ) -> None:
        self._handler_factory = handler_factory
        self._connections = connections
        self._tls = tls
        self._read_timeout = read_timeout
        self._metrics = metrics
        self._loop = asyncio.get_running_loop()
        self._raw: asyncio.Transport | None = None
        self._handshake: asyncio.Task[None] | None = None
        self._handler: RequestHandler | None = None
        #: The transport requests arrive on (TLS or plain), once the handshake is done.
        self.transport: asyncio.Transport | None = None
        # What arrived between the handshake's end and the handler's start.
        self._early: list[bytes] = []
        self._early_eof = False
        self._lost: tuple[Exception | None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._read_started: float | None = None
        self._in_request = False
        self.peer: str | None = None

    # asyncio.Protocol, for the raw socket and then for the TLS layer.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._connections.add(self)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else None
        if not self._tls.enabled:
            self._attach(transport)
            return
        if self._raw is not None:  # pragma: no cover - the TLS layer never calls it again
            return
        self._raw = transport
        # Nothing may be read before the TLS layer takes over the socket.
        transport.pause_reading()
        self._handshake = self._loop.create_task(self._start_tls(transport))

    def data_received(self, data: bytes) -> None:
        if self._handler is None:
            self._early.append(data)
            return
        if not self._in_request and self._timer is None:
            self._arm()
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        if self._handler is None:
            self._early_eof = True
        else:
            self._handler.eof_received()
        # Let the transport close: aiohttp answers nothing after the client's end of input.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._connections.discard(self)
        if self._handler is None:
            self._lost = (exc,)
            return
        self._handler.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()

    # The handshake and the handover.

    async def _start_tls(self, raw: asyncio.Transport) -> None:
        try:
            context = self._tls.context()
            transport = await self._loop.start_tls(
                raw, self, context, server_side=True, ssl_handshake_timeout=self._read_timeout
            )
        except asyncio.CancelledError:
            raw.abort()
            raise
        except Exception as exc:  # every failed handshake is a refused connection
            raw.abort()
            self._connections.discard(self)
            reason = _handshake_reason(exc)
            self._metrics.refused_connections.labels(reason=reason).inc()
            log.info("inbound.handshake_refused", peer=self.peer, reason=reason,
                     error=describe_refusal(exc))
            return
        if transport is None:  # pragma: no cover - only for a transport closed meanwhile
            raw.abort()
            self._connections.discard(self)
            return
        assert isinstance(transport, asyncio.Transport)
        self._attach(transport)

    def _attach(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._connections.attach(self, transport)
        handler = self._handler_factory()
        self._handler = handler
        handler.connection_made(transport)
        # The first request's clock starts now: a client that says nothing is cut off too.
        self._arm()
        if self._early:
            data = b"".join(self._early)
            self._early.clear()
            handler.data_received(data)
        if self._early_eof:
            handler.eof_received()
        if self._lost is not None:
            self._disarm()
            handler.connection_lost(self._lost[0])

    def abort_handshake(self) -> None:
        """Drop the connection if its handshake is still running."""
        if self._handshake is not None and not self._handshake.done():
            self._handshake.cancel()

    # The read clock, used by the routes.

    def request_started(self) -> float:
        """A request's headers are complete: stop the clock, return when it started."""
        started = self._read_started if self._read_started is not None else self._loop.time()
        self._disarm()
        self._in_request = True
        return started

    def request_finished(self) -> None:
        """The request was answered: the next one starts the clock with its first byte."""
        self._in_request = False
        self._read_started = None

    def _arm(self) -> None:
        self._disarm()
        self._read_started = self._loop.time()
        self._timer = self._loop.call_later(self._read_timeout, self._read_timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _read_timed_out(self) -> None:
        self._timer = None
        if self._in_request or self.transport is None:
            return
        self._metrics.refused_connections.labels(reason="read_timeout").inc()
        log.info("inbound.read_timeout", peer=self.peer, timeout_seconds=self._read_timeout)
        with contextlib.suppress(Exception):
            self.transport.abort()


def _handshake_reason(exc: BaseException) -> str:
    # asyncio aborts a handshake that takes too long with ConnectionAbortedError.
    if isinstance(exc, ConnectionAbortedError) and "handshake" in str(exc):
        return "handshake_timeout"
    return refusal_reason(exc)
