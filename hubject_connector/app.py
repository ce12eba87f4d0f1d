"""The running service: every part of the connector in one process, started in order.

What this room is for: wiring. ``create_app`` builds one aiohttp application, the ops
server (``ops.py``), whose cleanup contexts (aiohttp's ``cleanup_ctx``: set up, yield,
tear down) start the parts in this order and stop them in reverse:

1. the state store is opened (and its schema migrated);
2. the bus is connected, with every queue the connector consumes declared
   (``bus.topology.connector_queues``), so nothing a backend publishes first is lost;
3. the Hubject client loads its certificates (a bad or mismatched file fails here);
4. the flows start their consumers and background tasks;
5. the inbound HTTPS server starts listening for Hubject.

``Service`` runs that application on ``ops.host``/``ops.port``; ``serve`` runs a
``Service`` until SIGTERM or SIGINT. Nothing here reads the environment: the caller passes
a loaded ``Config`` (the command line loads it), and every part can be injected (a fake
Hubject client, a bus the test can break), as arq and the aiohttp demos do.

Start-up fails fast, with one line naming the setting or file: a ``ConfigError`` for a
bad setting or certificate (the command exits 2), a ``StartupError`` for a bus or state
store that cannot be reached (exit 1). Parts already started are stopped again.

Shutdown (``Service.stop``): first the intake stops, at the same time for both doors:
the inbound server stops accepting and answers the requests in flight, the flows cancel
their consumers and let handlers finish or hand their message back. Then the client, the
bus and the store close. All of it within ``service.shutdown_grace_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from hubject_connector import ops
from hubject_connector.bus.base import Bus
from hubject_connector.bus.embedded_api import HttpApiError
from hubject_connector.bus.factory import build_bus
from hubject_connector.bus.topology import connector_queues
from hubject_connector.config import Config, ConfigErrors, redacted
from hubject_connector.errors import BusError, ConfigError, ConnectorError, StateError
from hubject_connector.flows import Flows
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.inbound import InboundServer
from hubject_connector.state.base import StateStore
from hubject_connector.state.factory import build_store

log = structlog.get_logger(__name__)

#: Part of the grace period kept for closing the client, the bus and the store once the
#: intake has drained (at most this, at most a quarter of the grace period).
CLOSE_RESERVE_SECONDS: Final = 2.0
#: Least time each close (client, bus, store) gets, even once the grace period is used up.
MIN_CLOSE_SECONDS: Final = 0.1
#: Ops connections still open at shutdown are closed after this long (they only read).
OPS_SHUTDOWN_SECONDS: Final = 1.0


class StartupError(ConnectorError):
    """A service the connector needs (bus, state store) could not be used at start-up.

    ``setting`` names the configuration key that points at it. ``str()`` is one line.
    """

    def __init__(self, setting: str, message: str) -> None:
        # One line, whatever the library put in its message (aio-pika's may span several).
        self.setting = setting
        self.message = " ".join(message.split())
        super().__init__(f"{setting}: {self.message}")


class FlowsPart(Protocol):
    """What the service needs of the flows (``hubject_connector.flows.Flows``)."""

    @property
    def running(self) -> bool:
        """Whether the consumers and background tasks run."""

    async def start(self) -> None:
        """Start consuming (the bus is connected by then)."""

    async def stop(self, grace: float) -> None:
        """Stop consuming; let handlers in flight finish within ``grace`` seconds."""


class InboundPart(Protocol):
    """What the service needs of the inbound server (``hubject_connector.inbound``)."""

    @property
    def ready(self) -> bool:
        """Whether its certificate is loaded and in date and it listens."""

    @property
    def url(self) -> str:
        """Where Hubject reaches it (with the path prefix)."""

    async def start(self) -> None:
        """Bind and listen. Raises ``ConfigError`` naming the setting or file."""

    async def stop(self, grace: float) -> None:
        """Stop accepting; answer the requests in flight within ``grace`` seconds."""


Phase = Literal["starting", "serving", "stopping", "stopped"]


@dataclass(slots=True)
class Lifecycle:
    """Where the service stands, and the deadline of its shutdown once it began."""

    grace: float
    phase: Phase = "starting"
    deadline: float | None = None
    #: Parts of the intake (inbound, flows) that started.
    started: set[str] = field(default_factory=set)
    #: Stops already under way, by part, so each part is stopped once.
    stopping: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def begin_stopping(self) -> None:
        """The shutdown starts now: the grace period runs from here."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.grace
        self.phase = "stopping"

    def remaining(self) -> float:
        """Seconds left of the grace period (all of it before shutdown began)."""
        if self.deadline is None:
            return self.grace
        return max(0.0, self.deadline - time.monotonic())

    @property
    def reserve(self) -> float:
        """The part of the grace period kept for closing the client, bus and store."""
        return min(CLOSE_RESERVE_SECONDS, self.grace / 4)

    def drain_grace(self) -> float:
        """What the intake is told it may use to drain (the reserve kept for the rest)."""
        return max(0.0, self.remaining() - self.reserve)

    def intake_limit(self) -> float:
        """When the intake's stop is cut short if it overruns its grace: half the reserve
        later, so that the closes still get the other half."""
        return max(0.0, self.remaining() - self.reserve / 2)


CONFIG: Final = web.AppKey("config", Config)
METRICS: Final = web.AppKey("metrics", CollectorRegistry)
STORE: Final = web.AppKey("store", StateStore)
BUS: Final = web.AppKey("bus", Bus)
CLIENT: Final = web.AppKey("client", HubjectClient)
FLOWS: Final = web.AppKey("flows", FlowsPart)
INBOUND: Final = web.AppKey("inbound", InboundPart)
LIFECYCLE: Final = web.AppKey("lifecycle", Lifecycle)
READINESS: Final = ops.READINESS


def check_serving(config: Config) -> None:
    """Settings that ``serve`` needs beyond what ``load_config`` requires of every command.

    Raises ``ConfigErrors`` listing each one missing.
    """
    errors: list[ConfigError] = []
    hub = config.hubject
    if not hub.operator_id:
        errors.append(ConfigError("hubject.operator_id",
                                  "is required to serve: every call to Hubject names it"))
    if hub.ca_bundle is None:
        errors.append(ConfigError(
            "hubject.ca_bundle",
            "is required to serve: Hubject's server certificate chains to Hubject's own CA, "
            "which is trusted explicitly",
        ))
    if hub.client_cert is None and not hub.insecure_plaintext:
        errors.append(ConfigError(
            "hubject.client_cert",
            "is required to serve: Hubject refuses connections without the client "
            "certificate it issued",
        ))
    if errors:
        raise ConfigErrors(errors)


def client_certificate_problem(client: HubjectClient) -> str | None:
    """Why the client certificate in force cannot be presented, or ``None`` (readiness)."""
    try:
        tls = client.tls
    except RuntimeError:
        return "not loaded: the Hubject client has not started"
    return tls.unusable()


def _readiness(app: web.Application) -> ops.Readiness:
    """The checks of /readyz, reading the parts through the app's keys."""
    lifecycle = app[LIFECYCLE]

    def service() -> str | None:
        return None if lifecycle.phase == "serving" else f"the service is {lifecycle.phase}"

    def state_store() -> str | None:
        return None if app[STORE].is_open else "the state store is not open"

    def bus() -> str | None:
        return None if app[BUS].is_connected else "the bus is not connected"

    def client_certificate() -> str | None:
        return client_certificate_problem(app[CLIENT])

    def inbound() -> str | None:
        server = app[INBOUND]
        if server.ready:
            return None
        # InboundServer says why (not listening, certificate expired ...); a fake may not.
        explain = getattr(server, "readiness", None)
        reason = explain() if callable(explain) else None
        return str(reason) if reason else "the inbound server is not ready"

    def flows() -> str | None:
        return None if app[FLOWS].running else "the flows are not running"

    return ops.Readiness({
        "service": service,
        "state_store": state_store,
        "bus": bus,
        "client_certificate": client_certificate,
        "inbound": inbound,
        "flows": flows,
    })


async def _bounded(app: web.Application, part: str, close: Callable[[], Awaitable[None]],
                   *, limit: float | None = None) -> None:
    """Run one part's stop within what is left of the grace period; log, never raise."""
    lifecycle = app[LIFECYCLE]
    # A close is never cut at once: a file or connection left half-closed costs more than
    # the fraction of a second this may add to the grace period.
    budget = max(MIN_CLOSE_SECONDS, lifecycle.remaining()) if limit is None else limit
    try:
        async with asyncio.timeout(budget):
            await close()
    except TimeoutError:
        log.warning("service.stop_overran", part=part, seconds=round(budget, 3))
    except Exception as exc:  # one part failing to stop must not keep the others running
        log.error("service.stop_failed", part=part, error=repr(exc))
    else:
        log.debug("service.part_stopped", part=part)


# --- the cleanup contexts, in start order --------------------------------------------------


def _state_setting(config: Config) -> str:
    return "state.postgresql.dsn" if config.state.kind == "postgresql" else "state.sqlite.path"


def _bus_setting(config: Config) -> str:
    return "bus.rabbitmq.url" if config.bus.kind == "rabbitmq" else "bus.embedded"


@contextlib.asynccontextmanager
async def _owned(
    app: web.Application,
    part: str,
    *,
    handed_in_open: bool,
    open_part: Callable[[], Awaitable[None]],
    close: Callable[[], Awaitable[None]],
) -> AsyncIterator[None]:
    """Open ``part`` unless it was handed in open; close it at the end only if opened here."""
    if handed_in_open:
        yield
        return
    await open_part()
    yield
    await _bounded(app, part, close)


async def state_store_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the state store (unless it was handed in open); close it last."""
    store = app[STORE]

    async def open_store() -> None:
        try:
            await store.open()
        except StateError as exc:
            raise StartupError(_state_setting(app[CONFIG]), str(exc)) from exc

    async with _owned(app, "state store", handed_in_open=store.is_open, open_part=open_store,
                      close=store.close):
        yield


async def bus_ctx(app: web.Application) -> AsyncIterator[None]:
    """Connect the bus (unless it was handed in connected); close it after the client."""
    bus = app[BUS]

    async def connect_bus() -> None:
        try:
            await bus.connect()
        except HttpApiError as exc:
            # A setting that must change (a token to listen beyond loopback): configuration.
            key, _, message = str(exc).partition(": ")
            if not key.startswith("bus.") or not message:
                key, message = "bus.embedded", str(exc)
            raise ConfigError(key, message) from exc
        except BusError as exc:
            raise StartupError(_bus_setting(app[CONFIG]), str(exc)) from exc

    async with _owned(app, "bus", handed_in_open=bus.is_connected, open_part=connect_bus,
                      close=bus.close):
        yield


async def client_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the Hubject client: its certificates are loaded here, or start-up fails.

    ``start`` is idempotent, so a client handed in is started (and closed) here too.
    """
    client = app[CLIENT]
    await client.start()
    yield
    await _bounded(app, "hubject client", client.close)


async def flows_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the flows (consumers, batching, refresh); stop them before the client."""
    flows = app[FLOWS]
    await flows.start()
    app[LIFECYCLE].started.add("flows")
    yield
    await _intake_stop(app, "flows")


async def inbound_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the inbound HTTPS server last, once everything it hands work to runs."""
    inbound = app[INBOUND]
    await inbound.start()
    app[LIFECYCLE].started.add("inbound")
    app[LIFECYCLE].phase = "serving"
    yield
    await _intake_stop(app, "inbound")


def _intake_stop(app: web.Application, part: str) -> asyncio.Task[None]:
    """The stop of ``part`` (inbound or flows), started once; later calls get the same."""
    lifecycle = app[LIFECYCLE]
    task = lifecycle.stopping.get(part)
    if task is None:
        lifecycle.begin_stopping()
        grace = lifecycle.drain_grace()
        stoppable = app[INBOUND] if part == "inbound" else app[FLOWS]
        task = asyncio.create_task(
            _bounded(app, part, lambda: stoppable.stop(grace), limit=lifecycle.intake_limit()),
            name=f"stop-{part}",
        )
        lifecycle.stopping[part] = task
    return task


async def _stop_intake(app: web.Application) -> None:
    """on_shutdown: stop both doors at once, so neither takes work while the other drains."""
    lifecycle = app[LIFECYCLE]
    lifecycle.begin_stopping()
    # Only parts that started: a service stopped during start-up may have started the
    # flows and not yet the server.
    tasks = [_intake_stop(app, part) for part in ("inbound", "flows")
             if part in lifecycle.started]
    if tasks:
        await asyncio.gather(*tasks)


def create_app(
    config: Config,
    *,
    registry: CollectorRegistry | None = None,
    bus: Bus | None = None,
    store: StateStore | None = None,
    client: HubjectClient | None = None,
    flows: FlowsPart | None = None,
    inbound: InboundPart | None = None,
) -> web.Application:
    """The service's application: ops routes, and the parts' lifecycles as cleanup contexts.

    Each part not passed in is built from ``config`` (nothing connects yet). A bus or
    state store passed in already connected or open is used as it is and left open at
    the end; otherwise the application opens and closes it. The Hubject client, the flows
    and the inbound server are always started and stopped by the application. A bus
    passed in must declare ``connector_queues(config.flows)`` (``build_bus(queues=...)``).
    ``registry`` receives every metric (a fresh one by default, so two services in one
    process never collide).
    """
    registry = registry if registry is not None else CollectorRegistry()
    store = store if store is not None else build_store(config.state, registry=registry)
    bus = bus if bus is not None else build_bus(config.bus, queues=connector_queues(config.flows))
    client = client if client is not None else HubjectClient(config.hubject, registry=registry)
    if flows is None:
        flows = Flows(config, bus=bus, client=client, store=store, registry=registry)
    if inbound is None:
        inbound = InboundServer(config, bus=bus, registry=registry)

    app = web.Application()
    app[CONFIG] = config
    app[METRICS] = registry
    app[STORE] = store
    app[BUS] = bus
    app[CLIENT] = client
    app[FLOWS] = flows
    app[INBOUND] = inbound
    app[LIFECYCLE] = Lifecycle(grace=config.service.shutdown_grace_seconds)
    readiness = _readiness(app)
    ops.setup_ops(app, registry=registry, readiness=readiness)
    collector = ops.ReadinessCollector(readiness)
    registry.register(collector)

    async def metrics_ctx(_app: web.Application) -> AsyncIterator[None]:
        yield
        registry.unregister(collector)

    app.cleanup_ctx.extend([metrics_ctx, state_store_ctx, bus_ctx, client_ctx, flows_ctx,
                            inbound_ctx])
    app.on_shutdown.append(_stop_intake)
    return app


class Service:
    """The connector as one process: the application of ``create_app`` on the ops port.

    ``start()`` starts every part and then the ops server, and logs one line with every
    address; ``stop()`` stops them (see the module docstring). Keyword arguments are those
    of ``create_app``.
    """

    def __init__(
        self,
        config: Config,
        *,
        registry: CollectorRegistry | None = None,
        bus: Bus | None = None,
        store: StateStore | None = None,
        client: HubjectClient | None = None,
        flows: FlowsPart | None = None,
        inbound: InboundPart | None = None,
    ) -> None:
        self.config = config
        self.app = create_app(config, registry=registry, bus=bus, store=store, client=client,
                              flows=flows, inbound=inbound)
        self._runner = web.AppRunner(self.app, access_log=None,
                                     shutdown_timeout=OPS_SHUTDOWN_SECONDS)
        self._ops_url: str | None = None

    @property
    def lifecycle(self) -> Lifecycle:
        """Where the service stands."""
        return self.app[LIFECYCLE]

    @property
    def readiness(self) -> ops.Readiness:
        """The checks of /readyz."""
        return self.app[READINESS]

    @property
    def ops_url(self) -> str:
        """``http://host:port`` of the ops server, once started."""
        if self._ops_url is None:
            raise RuntimeError("the service is not started")
        return self._ops_url

    @property
    def inbound_url(self) -> str:
        """Where Hubject reaches the inbound server (with the path prefix)."""
        return self.app[INBOUND].url

    async def start(self) -> None:
        """Start every part, then the ops server. Raises ``ConfigError`` or ``StartupError``.

        Whatever started before a failure is stopped again before the error is raised.
        """
        check_serving(self.config)
        try:
            await self._runner.setup()
            ops_config = self.config.ops
            site = web.TCPSite(self._runner, ops_config.host, ops_config.port)
            try:
                await site.start()
            except OSError as exc:
                raise ConfigError(
                    "ops.port",
                    f"cannot listen on {ops_config.host}:{ops_config.port}: "
                    f"{exc.strerror or exc}",
                ) from exc
        except BaseException:
            self.lifecycle.begin_stopping()
            await self._runner.cleanup()
            self.lifecycle.phase = "stopped"
            raise
        host, port = self._runner.addresses[0][:2]
        self._ops_url = f"http://{_host_for_url(host)}:{port}"
        log.info("service.started", **self.addresses())

    def addresses(self) -> dict[str, str | None]:
        """Every address the service serves or uses (passwords redacted)."""
        plain = redacted(self.config)
        bus = self.app[BUS]
        if self.config.bus.kind == "rabbitmq":
            bus_address = str(plain["bus"]["rabbitmq"]["url"])
            bus_api = None
        else:
            bus_address = str(plain["bus"]["embedded"]["path"])
            bus_api = getattr(bus, "http_url", None)
        if self.config.state.kind == "postgresql":
            state = str(plain["state"]["postgresql"]["dsn"])
        else:
            state = str(plain["state"]["sqlite"]["path"])
        return {
            "inbound": self.app[INBOUND].url,
            "ops": self._ops_url,
            "bus": f"{self.config.bus.kind} {bus_address}",
            "bus_api": bus_api,
            "state": f"{self.config.state.kind} {state}",
            "hubject": self.config.hubject.url,
        }

    async def stop(self) -> None:
        """Stop taking work, drain, close every part; within the grace period."""
        if self.lifecycle.phase == "stopped":
            return
        self.lifecycle.begin_stopping()
        log.info("service.stopping", grace_seconds=self.config.service.shutdown_grace_seconds)
        await self._runner.cleanup()
        self.lifecycle.phase = "stopped"
        log.info("service.stopped")

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


#: Signals that stop the service gracefully.
STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


async def serve(config: Config, *, stop: asyncio.Event | None = None) -> None:
    """Run the service until SIGTERM or SIGINT (or ``stop`` is set), then stop it.

    A signal during start-up abandons the start (what started is stopped). A second
    signal while stopping is logged; the grace period still bounds the shutdown.
    Raises what ``Service.start`` raises.
    """
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    service = Service(config)

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            log.warning("service.already_stopping", signal=signum.name)
            return
        log.info("service.signal", signal=signum.name)
        stop.set()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    starting = asyncio.create_task(service.start(), name="service-start")
    signalled = asyncio.create_task(stop.wait(), name="service-stop-signal")
    try:
        await asyncio.wait({starting, signalled}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            # Stopped while starting: Service.start stops what had started, then re-raises
            # the cancellation, which ends here.
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            log.info("service.stopped", during="start-up")
            return
        starting.result()  # the start-up error, if there was one
        try:
            await signalled
        finally:
            await service.stop()
    finally:
        for task in (starting, signalled):
            task.cancel()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
