"""The HTTPS server Hubject calls: remote start/stop and reservations, on its own port.

What it is for: Hubject forwards an EMP's AuthorizeRemoteStart/Stop 2.1 and
AuthorizeRemoteReservationStart/Stop 1.1 to the CPO and wants an eRoamingAcknowledgement
in well under 10 s (design.md). What passes through: each request, checked at the door
(TLS and client certificate: ``tls``; source address, paths, size and read time:
``handlers``), decoded by the OICP layer and handed to the backend as a command on the bus
(``commands``). What it hands back: the backend's reply as the acknowledgement, or the
connector's own answer when there is none by the deadline.

Lifecycle: ``await start()`` loads the certificates (a ``ConfigError`` naming the setting or
file if they cannot be used) and listens on ``inbound.host``/``inbound.port``; ``await
stop(grace)`` stops accepting, lets requests in flight get their answers for up to
``grace`` seconds and closes. Stop it before the bus it uses: an answer in flight waits
for the backend's reply on that bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Final

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from hubject_connector.bus.base import Bus, LateReply
from hubject_connector.config import Config
from hubject_connector.errors import ConfigError
from hubject_connector.inbound.commands import Commands
from hubject_connector.inbound.connection import Connection, Connections
from hubject_connector.inbound.handlers import Handlers
from hubject_connector.inbound.metrics import InboundMetrics
from hubject_connector.inbound.tls import ServerTls

log = structlog.get_logger(__name__)

#: An idle keep-alive connection is closed after this long (Hubject reconnects as needed).
KEEPALIVE_SECONDS: Final = 75.0
#: Longest wait for reports to the backend (late replies) still being sent at stop.
_REPORT_GRACE_SECONDS: Final = 2.0


class InboundServer:
    """The server Hubject calls. See the module doc."""

    def __init__(self, config: Config, *, bus: Bus, registry: CollectorRegistry) -> None:
        self._config = config
        self._bus = bus
        self._metrics = InboundMetrics.for_registry(registry)
        self._commands = Commands(bus, config.inbound, self._metrics)
        self._connections = Connections()
        self._tls: ServerTls | None = None
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._watch: asyncio.Task[None] | None = None
        self._port: int | None = None
        self._previous_late_reply: Callable[[LateReply], Awaitable[None]] | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one the OS chose for port 0); after ``start()``."""
        if self._port is None:
            raise RuntimeError("the inbound server is not started")
        return self._port

    @property
    def url(self) -> str:
        """The base URL of the operations, e.g. ``https://127.0.0.1:8443/api/oicp``.

        What Hubject is given (behind a proxy, the proxy's) is this with the public host.
        A server on every interface is reached here through the loopback address.
        """
        host = self._config.inbound.host
        try:
            address = ipaddress.ip_address(host or "0.0.0.0")  # noqa: S104 - parsing only
        except ValueError:
            shown = host
        else:
            if address.is_unspecified:
                address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
            shown = f"[{address}]" if address.version == 6 else str(address)
        scheme = "https" if self._tls is None or self._tls.enabled else "http"
        return f"{scheme}://{shown}:{self.port}{self._config.inbound.path_prefix}"

    @property
    def ready(self) -> bool:
        """Listening, with a server certificate loaded and in date (or no TLS by choice)."""
        return self.readiness() is None

    def readiness(self) -> str | None:
        """Why the server is not ready (for ``/readyz``), or ``None`` when it is."""
        if self._listener is None or self._tls is None:
            return "the inbound server is not listening"
        return self._tls.problem()

    async def start(self) -> None:
        """Load the certificates, then listen. Raises ``ConfigError`` naming the setting."""
        if self._listener is not None:
            return
        inbound = self._config.inbound
        tls = ServerTls(inbound, metrics=self._metrics)
        handlers = Handlers(inbound, tls=tls, commands=self._commands, metrics=self._metrics,
                            connections=self._connections)
        # An unread rest of a refused body (413, 408) is drained as long as a request may
        # take to read, then the connection closes.
        runner = web.AppRunner(handlers.application(), handle_signals=False, access_log=None,
                               keepalive_timeout=KEEPALIVE_SECONDS,
                               lingering_time=inbound.read_timeout_seconds)
        await runner.setup()
        server = runner.server
        assert server is not None
        loop = asyncio.get_running_loop()

        def connection() -> Connection:
            return Connection(handler_factory=server, connections=self._connections, tls=tls,
                              read_timeout=inbound.read_timeout_seconds, metrics=self._metrics)

        try:
            listener = await loop.create_server(
                connection, inbound.host or None, inbound.port, reuse_address=True
            )
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                "inbound.port",
                f"cannot listen on {inbound.host}:{inbound.port}: {exc.strerror or exc}",
            ) from exc
        self._tls, self._runner, self._listener = tls, runner, listener
        self._port = int(listener.sockets[0].getsockname()[1])
        self._watch = asyncio.create_task(tls.watch(), name="inbound-certificate-watch")
        self._previous_late_reply = self._bus.on_late_reply
        self._bus.on_late_reply = self._on_late_reply
        if inbound.client_cert_mode == "off" and not inbound.allow_ips:
            # A client certificate is public: anyone who reaches this port can put one in
            # the header. Only the proxy may reach it.
            log.warning("inbound.open_to_all",
                        reason="client_cert_mode is 'off' and inbound.allow_ips is empty: "
                               "restrict allow_ips to the TLS-terminating proxy",
                        client_cert_header=inbound.client_cert_header)
        log.info("inbound.listening", url=self.url, client_cert_mode=inbound.client_cert_mode,
                 allow_ips=list(inbound.allow_ips),
                 reply_deadline_seconds=inbound.reply_deadline_seconds)

    async def stop(self, grace: float) -> None:
        """Stop accepting; answer the requests in flight within ``grace`` seconds; close."""
        listener, runner = self._listener, self._runner
        if listener is None or runner is None:
            return
        self._listener = None
        listener.close()
        self._connections.abort_handshakes()
        server = runner.server
        if server is not None:
            # Idle keep-alive connections close now; busy ones after their answer.
            server.pre_shutdown()
            await server.shutdown(grace)
        await runner.cleanup()
        self._runner = None
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        await self._commands.drain(_REPORT_GRACE_SECONDS)
        if self._bus.on_late_reply == self._on_late_reply:
            self._bus.on_late_reply = self._previous_late_reply
        log.info("inbound.stopped")

    async def _on_late_reply(self, late: LateReply) -> None:
        await self._commands.report_late_reply(late)
        if self._previous_late_reply is not None:
            await self._previous_late_reply(late)
