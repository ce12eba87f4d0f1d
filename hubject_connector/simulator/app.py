"""The simulator's HTTPS server: a fake Hubject on 127.0.0.1 with mutual TLS.

It serves every CPO→Hubject operation of the operation table under ``/api/oicp``, each
call going through, in order: the record (``recording.py``), the scripted faults
(``faults.py``), the rate limit (``limits.py``) and Hubject's rules (``hub.py``).

Use it from Python::

    async with run_simulator(SimulatorConfig.from_dev_pki(pki)) as sim:
        ...  # point the client at sim.url with the dev PKI's CPO certificate
        assert sim.requests[0].status_code == "000"

HTTP 503 and 429 (scripted, or the rate limit) are answered with a short text body and,
for 429, a ``Retry-After`` header in seconds: they stand for Hubject's gateway, not for an
OICP answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import structlog
from aiohttp import web

from hubject_connector.certs import DevPki
from hubject_connector.oicp import codec
from hubject_connector.oicp.operations import OPERATIONS, Direction, Operation
from hubject_connector.oicp.operations import operation as find_operation
from hubject_connector.simulator import answers
from hubject_connector.simulator.config import DEFAULT_PROVIDER_ID, SimulatorConfig
from hubject_connector.simulator.emp import SimulatorEmp
from hubject_connector.simulator.faults import FaultKind, FaultScript
from hubject_connector.simulator.hub import Hub, HubRules, ProgressTooSoon, Reply
from hubject_connector.simulator.limits import RateLimiter
from hubject_connector.simulator.recording import (
    ClientCertificate,
    Overlap,
    RecordedRequest,
    Recorder,
    max_calls_in_window,
)
from hubject_connector.simulator.state import CardList, Session, SimulatorState
from hubject_connector.simulator.tls import peer_certificate, server_context

#: Every OICP path lives below this base (design.md: ``https://service.hubject.com/api/oicp``).
BASE_PATH: Final = "/api/oicp"

_log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Simulator:
    """A fake Hubject platform: start it, point a client at ``url``, inspect what it saw.

    ``state`` holds what was pushed; ``requests`` every call; ``faults`` scripts failures;
    ``cards`` is the card list AuthorizeStart is answered from.
    """

    def __init__(self, config: SimulatorConfig, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.config = config
        self.state = SimulatorState(cards=CardList(config.cards))
        self.faults = FaultScript()
        self.recorder = Recorder()
        self.hub = Hub(
            self.state,
            HubRules(
                sub_operators=dict(config.sub_operators),
                status_update_upserts=config.status_update_upserts,
                cdr_requires_known_session=config.cdr_requires_known_session,
            ),
            clock=clock,
        )
        self._clock = clock
        self._rate_limits: dict[str, int | None] = {
            name: config.rate_limit(name)
            for name, op in OPERATIONS.items() if op.direction is Direction.CPO_TO_HUBJECT
        }
        self.limiter = RateLimiter(lambda name: self._rate_limits.get(name))
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._changed: asyncio.Condition | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on the configured host and port (0: a free port, see ``port``)."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        context = server_context(self.config.server_cert, self.config.server_key,
                                 self.config.client_ca)
        runner = web.AppRunner(make_app(self), shutdown_timeout=self.config.shutdown_timeout,
                               access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.config.host, self.config.port,
                               ssl_context=context)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        _log.info("simulator listening", url=self.url)

    async def stop(self) -> None:
        """Stop listening; calls still held or delayed are released first."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._runner is not None

    @property
    def port(self) -> int:
        """The TCP port the server is bound to."""
        if self._port is None:
            raise RuntimeError("the simulator is not running")
        return self._port

    @property
    def host(self) -> str:
        """An address to reach the server at."""
        return "127.0.0.1" if self.config.host in ("", "0.0.0.0", "::") else self.config.host  # noqa: S104

    @property
    def url(self) -> str:
        """The base URL, as Hubject's ``https://service.hubject.com/api/oicp``."""
        return f"https://{self.host}:{self.port}{BASE_PATH}"

    # --- what it saw ----------------------------------------------------------------------

    @property
    def cards(self) -> CardList:
        """The card list AuthorizeStart is answered from (may be changed while running)."""
        return self.state.cards

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every call so far, in order of arrival."""
        return self.recorder.requests

    def requests_of(self, operation: str) -> list[RecordedRequest]:
        """The calls of one operation (by name, e.g. "PushEvseStatus")."""
        return self.recorder.of(find_operation(operation).name)

    @property
    def overlaps(self) -> list[Overlap]:
        """Calls of a serialized operation that were in flight at the same time."""
        return self.recorder.overlaps

    @property
    def client_certificates(self) -> list[ClientCertificate]:
        """Each distinct client certificate seen, in the order first seen."""
        return self.recorder.client_certificates()

    @property
    def last_client_certificate(self) -> ClientCertificate | None:
        """The client certificate of the latest call."""
        for record in reversed(self.recorder.requests):
            if record.client is not None:
                return record.client
        return None

    @property
    def progress_too_soon(self) -> list[ProgressTooSoon]:
        """Progress notifications sent less than 5 minutes after the previous one."""
        return self.hub.progress_too_soon

    def max_calls_per_minute(self, operation: str) -> int:
        """The most calls of ``operation`` that arrived within any rolling minute."""
        return max_calls_in_window(self.requests_of(operation))

    async def wait_for_requests(self, count: int, *, operation: str | None = None,
                                give_up_after: float = 10.0) -> list[RecordedRequest]:
        """Wait until ``count`` calls (of ``operation``) have been answered; return them.

        Raises ``TimeoutError`` after ``give_up_after`` seconds, so a test cannot hang.
        """
        name = find_operation(operation).name if operation is not None else None

        def answered() -> list[RecordedRequest]:
            return [r for r in self.recorder.of(name) if r.ended is not None]

        if self._changed is None:
            raise RuntimeError("the simulator is not running")
        async with asyncio.timeout(give_up_after), self._changed:
            await self._changed.wait_for(lambda: len(answered()) >= count)
        return answered()

    # --- settings while running -----------------------------------------------------------

    def set_rate_limit(self, operation: str, per_minute: int | None) -> None:
        """Change one operation's limit (None: unlimited); calls counted so far still count."""
        name = find_operation(operation).name
        if name not in self._rate_limits:
            raise KeyError(f"{name} is not an operation sent to Hubject")
        self._rate_limits[name] = per_minute

    def reset(self) -> None:
        """Forget what was stored and recorded, the faults and the rate counts (not the cards)."""
        self.state.clear()
        self.recorder.clear()
        self.faults.clear()
        self.limiter.clear()
        self.hub.progress_too_soon.clear()

    def register_session(self, session: Session) -> None:
        """Make a session known (as one created by a remote start through Hubject)."""
        self.hub.register_session(session)

    def emp(
        self,
        cpo_url: str,
        *,
        ca: Path,
        cert: Path | None = None,
        key: Path | None = None,
        provider_id: str = DEFAULT_PROVIDER_ID,
        timeout: float = 10.0,
    ) -> SimulatorEmp:
        """An EMP that calls the CPO at ``cpo_url`` with this simulator's client certificate.

        Sessions it starts are registered here, so their CDRs count as known.
        """
        cert = cert or self.config.emp_cert
        key = key or self.config.emp_key
        if cert is None or key is None:
            raise ValueError("no EMP client certificate: set emp_cert/emp_key or pass cert/key")
        return SimulatorEmp(cpo_url, cert=cert, key=key, ca=ca, provider_id=provider_id,
                            timeout=timeout, on_session=self.register_session)

    # --- serving --------------------------------------------------------------------------

    async def serve(self, request: web.Request, operation: Operation) -> web.StreamResponse:
        """Answer one call of ``operation`` (the route handler)."""
        loop = asyncio.get_running_loop()
        client = peer_certificate(
            request.transport.get_extra_info("ssl_object") if request.transport else None
        )
        record = self.recorder.start(
            operation.name, path=request.path, path_params=dict(request.match_info),
            client=client, received_at=self._clock(), now=loop.time(),
            serialized=operation.serialized,
        )
        try:
            return await self._answer(request, operation, record, loop.time)
        finally:
            self.recorder.finish(record, now=loop.time())
            if self._changed is not None:
                async with self._changed:
                    self._changed.notify_all()

    async def _answer(self, request: web.Request, operation: Operation,
                      record: RecordedRequest, now: Callable[[], float]) -> web.StreamResponse:
        record.raw_body = await request.read()
        record.json = _parse_json(record.raw_body)
        decision = self.faults.decide(operation.name)
        if decision.hold is not None:
            decision.hold.arrived.set()
            await decision.hold.wait_released()
        if decision.delay:
            await asyncio.sleep(decision.delay)
        kind = decision.kind
        if kind is not None:
            record.fault = kind.value
        if kind is FaultKind.DROP:
            return _drop(request, record)
        if kind is FaultKind.HTTP_503:
            return _http_error(record, 503, "Service Unavailable (simulated)")
        if kind is FaultKind.HTTP_429:
            return _http_error(record, 429, "Too Many Requests (simulated)",
                               retry_after=decision.retry_after)
        if kind is FaultKind.RESULT_FALSE:
            reply = Reply(200, answers.refusal(operation, decision.code,
                                               "failure scripted in the simulator"))
            return _respond(record, reply)
        partner = record.client.subject if record.client is not None else ""
        wait = self.limiter.admit(operation.name, partner, now())
        if wait is not None:
            _log.warning("simulator rate limit", operation=operation.name,
                         per_minute=self._rate_limits.get(operation.name))
            return _http_error(
                record, 429,
                f"Too Many Requests: over {self._rate_limits.get(operation.name)} calls per "
                f"minute for {operation.name}", retry_after=wait,
            )
        reply = self.hub.handle(operation, request.match_info, record.raw_body, record.client)
        record.message = reply.message
        if kind is FaultKind.DROP_AFTER_PROCESSING:
            record.answer = reply.answer
            return _drop(request, record)
        return _respond(record, reply)


def _parse_json(body: bytes) -> Any:
    try:
        return codec.parse_json(body)
    except codec.OicpValidationError:
        return None


def _respond(record: RecordedRequest, reply: Reply) -> web.Response:
    record.http_status = reply.http_status
    record.answer = reply.answer
    _log.info("simulator answer", operation=record.operation, status=record.status_code,
              result=record.result, info=record.additional_info)
    return web.Response(status=reply.http_status, body=reply.body(),
                        content_type="application/json", charset="utf-8",
                        headers=dict(reply.headers))


def _http_error(record: RecordedRequest, status: int, text: str, *,
                retry_after: int | None = None) -> web.Response:
    record.http_status = status
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return web.Response(status=status, text=text, headers=headers)


def _drop(request: web.Request, record: RecordedRequest) -> web.Response:
    # Close the connection without an answer, as a broken network would: abort() skips
    # the TLS close_notify, so the client sees the connection vanish.
    transport = request.transport
    if transport is not None:
        transport.abort()
    record.http_status = None
    # aiohttp finds the transport closed and drops this response quietly.
    return web.Response(status=500)


SIMULATOR_KEY: Final = web.AppKey("simulator", Simulator)


def _route(operation: Operation) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await request.app[SIMULATOR_KEY].serve(request, operation)

    return handler


async def _not_found(request: web.Request) -> web.Response:
    body = codec.encode(answers.acknowledgement(
        False, "022", f"no OICP operation at {request.method} {request.path}"))
    return web.Response(status=404, body=body, content_type="application/json")


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    simulator = app[SIMULATOR_KEY]
    simulator._changed = asyncio.Condition()
    yield
    simulator.faults.release_all()
    simulator._changed = None
    _log.info("simulator stopped", requests=len(simulator.requests))


async def _release_held(app: web.Application) -> None:
    # Runs before the server waits for the calls in flight: a held call must not keep the
    # shutdown waiting for its timeout.
    app[SIMULATOR_KEY].faults.release_all()


def make_app(simulator: Simulator) -> web.Application:
    """The aiohttp application serving ``simulator`` (for users who run it themselves)."""
    app = web.Application(client_max_size=simulator.config.max_body_bytes)
    app[SIMULATOR_KEY] = simulator
    for operation in OPERATIONS.values():
        if operation.direction is Direction.CPO_TO_HUBJECT:
            app.router.add_post(BASE_PATH + operation.path, _route(operation))
    app.router.add_route("*", "/{tail:.*}", _not_found)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_release_held)
    return app


@asynccontextmanager
async def run_simulator(
    config: SimulatorConfig | None = None, *, pki: DevPki | None = None, **settings: Any
) -> AsyncIterator[Simulator]:
    """Run a simulator for the duration of the ``async with`` block.

    Give a ``config``, or a dev ``pki`` to serve with; ``settings`` change single
    ``SimulatorConfig`` fields (e.g. ``cards=...``, ``rate_limits=...``).
    """
    if config is None:
        if pki is None:
            raise ValueError("give a SimulatorConfig or a DevPki")
        config = SimulatorConfig.from_dev_pki(pki, **settings)
    elif settings:
        config = config.replace(**settings)
    simulator = Simulator(config)
    async with simulator:
        yield simulator
