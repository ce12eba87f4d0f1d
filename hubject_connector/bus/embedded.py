"""The embedded bus: a durable queue in one SQLite file, the default when there is no broker.

What passes through: the same messages as on RabbitMQ, stored by
:mod:`~hubject_connector.bus.embedded_store` (one SQLite file, WAL, ``synchronous=FULL``:
what a publish returned for survives a ``kill -9``). This room is the glue: the
:class:`~hubject_connector.bus.base.Bus` adapter, its consumers (which lease messages,
renew the leases while handlers run, and settle them), request/reply, and the lifecycle
of the two neighbours it is given:

* the webhook (:mod:`~hubject_connector.bus.embedded_webhook`), when
  ``bus.embedded.webhook_url`` is set: commands are POSTed there and the response body is
  the reply; delivery results and the replies to the backend's requests are POSTed from
  their queues (:func:`webhook_queues`), retried, then dead-lettered;
* the HTTP API for the backend (:mod:`~hubject_connector.bus.embedded_api`, which imports
  this module, never the other way round): started while connected when ``serve`` is on
  and an ``http_api`` factory was given (``build_bus`` gives it).

Delivery results and the replies to the backend's requests are also kept, for
``results_retention_seconds``, where ``GET /v1/results`` reads them
(:meth:`EmbeddedBus.results_after`): a backend without a webhook polls them there.

Each bus runs its SQLite calls on one dedicated thread, so the event loop never waits on
the disk. Requests go to the webhook or, with none, through the queue to a
:meth:`Bus.serve` responder whose reply is stored in the ``replies`` table. Late replies
become dead letters. Requests the backend POSTs (authorization) carry the reply address
:data:`WEBHOOK_REPLY_TO`: their replies go where results go.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Final, Protocol, TypeVar

import aiohttp
import structlog

from hubject_connector.bus.base import (
    CLOSE_GRACE_SECONDS,
    DEADLINE_HEADER,
    LATE_REPLIES,
    Bus,
    Consumer,
    DeadLetter,
    Handler,
    IncomingMessage,
    NotConnected,
    QueueSpec,
    RequestTimeout,
    correlation_id_for,
    message_id_for,
    parse_reply,
    to_body,
)
from hubject_connector.bus.contract import (
    MESSAGE_SPECS,
    Direction,
    Envelope,
    Kind,
    parse_envelope,
)
from hubject_connector.bus.embedded_store import (
    DeadLetterPage,
    QueueStore,
    ResultPage,
    StoredMessage,
)
from hubject_connector.bus.embedded_webhook import Webhook
from hubject_connector.config import BusConfig, EmbeddedBusConfig
from hubject_connector.errors import BusError

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: How often dead letters and results past their age or count are deleted.
PRUNE_INTERVAL_SECONDS: Final = 60.0
#: The queue name of what the HTTP API refused (kept as dead letters).
HTTP_API_QUEUE: Final = "http-api"

#: The reply address of requests the backend POSTed to the HTTP API: the reply is kept
#: for GET /v1/results and, with a webhook, queued in BACKEND_REPLIES and POSTed to it
#: (on RabbitMQ it goes to the AMQP reply_to).
WEBHOOK_REPLY_TO: Final = "webhook"
BACKEND_REPLIES: Final = "backend.replies"


def webhook_queues() -> list[QueueSpec]:
    """The queues of connector-to-backend messages that are not commands.

    On RabbitMQ the backend consumes them itself (replies go to its reply_to); on the
    embedded bus they are POSTed to the webhook, one by one, retried on any answer but 2xx
    or none, then dead-lettered. The replies to the backend's requests are among them.
    """
    bindings: dict[str, list[str]] = {}
    for spec in MESSAGE_SPECS.values():
        outgoing = spec.direction is Direction.TO_BACKEND
        if outgoing and spec.kind in (Kind.EVENT, Kind.RESULT) and spec.queue is not None:
            bindings.setdefault(spec.queue, []).append(str(spec.type))
        if outgoing and spec.kind is Kind.REPLY:
            bindings.setdefault(BACKEND_REPLIES, []).append(str(spec.type))
    return [QueueSpec(queue, bindings=tuple(types)) for queue, types in bindings.items()]


#: The message types kept for GET /v1/results: those of the webhook queues.
RESULT_TYPES: Final = frozenset(p for spec in webhook_queues() for p in spec.patterns)


class HttpServer(Protocol):
    """A server the bus runs while connected (the HTTP API), started and stopped by it."""

    async def start(self) -> str:
        """Listen; the URL it listens on. Raises ``BusError`` when it cannot."""

    async def stop(self) -> None:
        """Stop listening, finishing the requests in flight."""


#: Makes the HTTP API of a bus (``embedded_api.HttpApi``), injected so that this module
#: does not import the API, which imports it.
HttpApiFactory = Callable[["EmbeddedBus"], HttpServer]


async def _sleep_or_wake(event: asyncio.Event, seconds: float) -> None:
    """Wait until ``event`` is set or ``seconds`` passed, whichever is first.

    Not ``asyncio.wait_for(event.wait(), ...)``: on Python 3.11 that can swallow a
    cancellation arriving as the event is set, and a consumer would never stop.
    """
    timer = asyncio.get_running_loop().call_later(seconds, event.set)
    try:
        await event.wait()
    finally:
        timer.cancel()


def _correlation_of(message: Envelope | bytes) -> str | None:
    """The ``correlationid`` of a message for the backend (None when it has none)."""
    if isinstance(message, Envelope):
        return message.correlation_id
    try:
        document = json.loads(message)
    except ValueError:
        return None
    value = document.get("correlationid") if isinstance(document, dict) else None
    return value if isinstance(value, str) else None


class EmbeddedMessage(IncomingMessage):
    """A message leased from the SQLite file."""

    def __init__(self, bus: EmbeddedBus, stored: StoredMessage, spec: QueueSpec) -> None:
        super().__init__(
            body=stored.body,
            headers=stored.headers,
            message_id=stored.id,
            queue=stored.queue,
            routing_key=stored.routing_key,
            retries=stored.retries,
            retry_delays=spec.delays(bus.retry_delays),
            redelivered=stored.deliveries > 1,
            correlation_id=stored.correlation_id,
            reply_to=stored.reply_to,
        )
        self._bus = bus
        self._seq = stored.seq

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a settling statement; if the file fails, let the lease lapse (see below)."""
        try:
            return await self._bus._run(fn, self._seq, self._bus.owner, *args)
        except Exception:
            # Not settled (a full disk, say): the lease must end for the message to come
            # back, so it is no longer renewed.
            self._bus._abandon(self._seq)
            raise

    async def _ack(self) -> None:
        if not await self._write(self._bus.store.ack):
            log.warning("bus.lease_lost", queue=self.queue, message_id=self.message_id)

    async def _retry(self, delay: float) -> None:
        await self._write(self._bus.store.retry, delay)
        self._bus._wake(self.queue)

    async def _dead_letter(self, reason: str, error: str | None) -> None:
        await self._write(self._bus.store.dead_letter, reason, error)

    async def _release(self) -> None:
        await self._write(self._bus.store.release)
        self._bus._wake(self.queue)

    async def _reply(self, reply: Envelope | bytes) -> None:
        assert self.reply_to is not None
        assert self.correlation_id is not None
        if self.reply_to == WEBHOOK_REPLY_TO:
            await self._bus._reply_to_backend(reply)
            return
        await self._bus._run(
            self._bus.store.put_reply, self.reply_to, self.correlation_id, to_body(reply)
        )
        self._bus._replies_wakeup.set()


class _EmbeddedConsumer(Consumer):
    def __init__(
        self, bus: EmbeddedBus, spec: QueueSpec, handler: Handler, limit: int, validate: bool
    ) -> None:
        super().__init__(spec, handler, validate)
        self._bus = bus
        self._limit = 1 if spec.ordered else max(1, limit)
        self._task = asyncio.create_task(self._run(), name=f"bus-consumer-{spec.name}")

    async def _run(self) -> None:
        bus = self._bus
        wakeup = bus._wakeup(self._spec.name)
        while True:
            wakeup.clear()
            free = self._limit - len(self._inflight)
            next_visible: float | None = None
            if free > 0:
                try:
                    claimed, next_visible = await bus._run(
                        bus.store.claim,
                        self._spec.name,
                        bus.owner,
                        free,
                        bus.config.lease_seconds,
                        ordered=self._spec.ordered,
                    )
                except sqlite3.Error as exc:  # a locked or full disk: try again shortly
                    log.error("bus.claim_failed", queue=self._spec.name, error=str(exc))
                    claimed = []
                for stored in claimed:
                    bus._abandoned.pop(stored.seq, None)  # leased anew: renewed again
                    self._start_handling(EmbeddedMessage(bus, stored, self._spec))
                if len(claimed) == free:
                    continue
            wait = bus.config.poll_interval_seconds
            until_visible = None if next_visible is None else next_visible - time.time()
            if until_visible is not None and until_visible > 0:
                # A delayed retry or a lease ends sooner than the next poll: wake for it.
                # (Visible now but not claimed means another process holds an ordered
                # queue: poll, do not spin.)
                wait = min(wait, until_visible)
            await _sleep_or_wake(wakeup, wait)

    def _handled(self, task: asyncio.Task[None]) -> None:
        super()._handled(task)
        self._bus._wake(self._spec.name)  # a slot is free: claim the next one

    async def cancel(self, grace: float = CLOSE_GRACE_SECONDS) -> None:
        """Stop claiming; let handlers finish for ``grace`` seconds, then hand theirs back."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._drain(grace)
        self._bus._consumers.discard(self)


class EmbeddedBus(Bus):
    """The bus on a local SQLite file, with an HTTP API for the backend.

    ``serve`` runs, while connected, the deliveries to the webhook and the HTTP API made
    by ``http_api`` (``build_bus`` passes ``embedded_api.HttpApi``); a command-line tool
    that only reads dead letters turns it off. ``queues`` are declared at connect().
    """

    def __init__(
        self,
        config: EmbeddedBusConfig,
        *,
        retry_delays: Iterable[float] = (5.0, 30.0, 300.0),
        request_timeout: float = 8.0,
        serve: bool = True,
        prefetch: int = 32,
        queues: Iterable[QueueSpec] = (),
        http_api: HttpApiFactory | None = None,
    ) -> None:
        super().__init__(
            retry_delays=tuple(retry_delays), request_timeout=request_timeout, queues=queues
        )
        self.config = config
        self.store = QueueStore(
            config.path,
            max_dead_letters=config.max_dead_letters,
            dead_letter_max_age=config.dead_letter_max_age_seconds,
            results_retention=config.results_retention_seconds,
        )
        #: This instance's lease owner and reply address (unique per process start).
        self.owner = f"embedded:{uuid.uuid4()}"
        self.prefetch = prefetch
        self._serve = serve
        self._http_api_factory = http_api
        self._executor: ThreadPoolExecutor | None = None
        self._connected = False
        self._consumers: set[_EmbeddedConsumer] = set()
        self._wakeups: dict[str, asyncio.Event] = {}
        self._replies_wakeup = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        # Messages whose handling ended without being settled (the file failed), by seq,
        # with when: their leases are not renewed, so that they are delivered again.
        self._abandoned: dict[int, float] = {}
        self._session: aiohttp.ClientSession | None = None
        self._webhook: Webhook | None = None
        self._http_api: HttpServer | None = None
        self._http_url: str | None = None

    @classmethod
    def from_config(
        cls,
        config: BusConfig,
        *,
        serve: bool = True,
        queues: Iterable[QueueSpec] = (),
        http_api: HttpApiFactory | None = None,
    ) -> EmbeddedBus:
        """The embedded bus described by the ``[bus]`` section."""
        return cls(
            config.embedded,
            retry_delays=config.retry_delays_seconds,
            request_timeout=config.request_timeout_seconds,
            serve=serve,
            queues=queues,
            http_api=http_api,
        )

    @property
    def is_connected(self) -> bool:
        """Whether the file is open."""
        return self._connected

    @property
    def http_url(self) -> str | None:
        """Where the HTTP API listens (``http://host:port``), once connected."""
        return self._http_url

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._executor is None:
            raise NotConnected("the embedded bus is not connected")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args, **kwargs))

    def _wakeup(self, queue: str) -> asyncio.Event:
        return self._wakeups.setdefault(queue, asyncio.Event())

    def _wake(self, queue: str) -> None:
        self._wakeup(queue).set()

    async def _store(
        self,
        routing_key: str,
        body: bytes,
        headers: Mapping[str, str],
        message_id: str,
        **options: Any,
    ) -> None:
        """Commit one row per bound queue and wake this process's consumers of them.

        Messages for the backend (delivery results, replies) are also kept for
        GET /v1/results: with no webhook, that is where the backend reads them.
        """
        queues = await self._run(
            self.store.publish,
            routing_key,
            body,
            headers,
            message_id,
            keep_result=routing_key in RESULT_TYPES,
            **options,
        )
        for queue in queues:
            self._wake(queue)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def connect(self) -> None:
        """Open the file, declare the queues; start the background work and the HTTP API."""
        if self._connected:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bus-sqlite")
        try:
            await self._run(self.store.open)
        except sqlite3.Error as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise BusError(f"cannot open the embedded bus at {self.config.path}: {exc}") from exc
        self._connected = True
        try:
            # The connector's queues before the HTTP API takes its first message: what
            # the backend posts from then on has a queue to wait in, consumer or not.
            for spec in self.queues:
                await self._run(self.store.declare, spec)
            await self._prune()
            self._spawn(self._renew_leases(), "bus-lease-renewal")
            self._spawn(self._pick_up_replies(), "bus-replies")
            self._spawn(self._prune_periodically(), "bus-prune")
            if self.config.webhook_url:
                self._session = aiohttp.ClientSession()
                self._webhook = Webhook(self.config.webhook_url, self._session)
            if self._serve:
                if self._http_api_factory is not None:
                    self._http_api = self._http_api_factory(self)
                    self._http_url = await self._http_api.start()
                if self._webhook is not None:
                    for spec in webhook_queues():
                        await self.consume(spec, self._webhook.forward)
        except BaseException:
            await self.close()
            raise
        log.info("bus.connected", kind="embedded", path=str(self.config.path), http=self._http_url)

    async def close(self) -> None:
        """Stop the HTTP API and consumers, fail waiting requests, close the file."""
        if not self._connected:
            return
        if self._http_api is not None:
            await self._http_api.stop()
            self._http_api = None
            self._http_url = None
        for consumer in list(self._consumers):
            await consumer.cancel()
        self._pending.fail_all(NotConnected("the bus was closed while waiting for a reply"))
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.wait(set(self._background))
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._webhook = None
        with contextlib.suppress(sqlite3.Error):
            await self._run(self.store.release_all, self.owner)
        await self._run(self.store.close)
        self._connected = False
        assert self._executor is not None
        self._executor.shutdown(wait=True)
        self._executor = None

    def _abandon(self, seq: int) -> None:
        """Stop renewing the lease of ``seq``: its handler ended, the file failed to settle it."""
        self._abandoned[seq] = time.monotonic()

    async def _renew_leases(self) -> None:
        interval = self.config.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            # Past two lease periods without renewal, a lease has lapsed for sure.
            lapsed = time.monotonic() - 2 * self.config.lease_seconds
            for seq, since in list(self._abandoned.items()):
                if since < lapsed:
                    del self._abandoned[seq]
            try:
                await self._run(self.store.renew, self.owner, self.config.lease_seconds,
                                tuple(self._abandoned))
            except sqlite3.Error as exc:
                log.error("bus.lease_renewal_failed", error=str(exc))

    async def _prune(self) -> None:
        try:
            letters, results = await self._run(self.store.prune)
        except sqlite3.Error as exc:
            log.error("bus.prune_failed", error=str(exc))
            return
        if letters or results:
            log.info("bus.pruned", dead_letters=letters, results=results)

    async def _prune_periodically(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_INTERVAL_SECONDS)
            await self._prune()

    async def _pick_up_replies(self) -> None:
        while True:
            await _sleep_or_wake(self._replies_wakeup, self.config.poll_interval_seconds)
            self._replies_wakeup.clear()
            try:
                replies = await self._run(self.store.take_replies, self.owner)
            except sqlite3.Error as exc:
                log.error("bus.reply_pickup_failed", error=str(exc))
                continue
            for correlation_id, body in replies:
                if not self._pending.resolve(correlation_id, body):
                    await self._keep_late_reply(correlation_id, body, "")

    async def _keep_late_reply(self, correlation_id: str, body: bytes, routing_key: str) -> None:
        late = self._late_reply(correlation_id, body, routing_key)
        try:
            await self._run(
                self.store.add_dead_letter,
                queue=LATE_REPLIES,
                routing_key=late.routing_key,
                body=body,
                headers={"correlation-id": correlation_id},
                reason=late.reason,
                error=None,
            )
        except (sqlite3.Error, NotConnected) as exc:
            # Raised on, this would end the reply pickup loop (or die unseen in a
            # background task): every later request would time out.
            log.error(
                "bus.late_reply_not_kept",
                correlation_id=correlation_id,
                reason=late.reason,
                error=repr(exc),
            )
            return
        await self._report_late_reply(late)

    async def accept_request(self, routing_key: str, body: bytes, envelope: Envelope) -> str:
        """Store a request the backend POSTed; its reply goes where results go.

        A request with a ``deadline`` nobody took by then is dead-lettered, not handled.
        """
        await self._store(
            routing_key,
            body,
            {},
            envelope.id,
            correlation_id=envelope.id,
            reply_to=WEBHOOK_REPLY_TO,
            expires_at=envelope.deadline.timestamp() if envelope.deadline else None,
        )
        return envelope.id

    async def _reply_to_backend(self, reply: Envelope | bytes) -> None:
        """Keep the reply to a request the backend POSTed (and queue it for the webhook)."""
        envelope = reply if isinstance(reply, Envelope) else parse_envelope(reply)
        await self._store(
            str(envelope.type),
            to_body(reply),
            {},
            envelope.id,
            correlation_id=envelope.correlation_id,
        )

    async def declare(self, queue: QueueSpec | str) -> None:
        """Record the queue and its bindings in the file."""
        spec = self._spec(queue)
        self._remember(spec)
        await self._run(self.store.declare, spec)

    async def publish(
        self,
        routing_key: str,
        message: Envelope | bytes,
        *,
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
    ) -> str:
        """Commit one row per bound queue; returns the message id."""
        message_id = message_id or message_id_for(message)
        options: dict[str, Any] = {}
        if routing_key in RESULT_TYPES:
            options["correlation_id"] = _correlation_of(message)
        await self._store(routing_key, to_body(message), headers or {}, message_id, **options)
        return message_id

    async def consume(
        self,
        queue: QueueSpec | str,
        handler: Handler,
        *,
        prefetch: int | None = None,
        validate: bool = True,
    ) -> Consumer:
        """Declare the queue and start handing its messages to ``handler``."""
        if not self._connected:
            raise NotConnected("connect() the bus before consuming")
        spec = self._spec(queue)
        if spec.name not in self._queue_specs and not spec.bindings and not spec.ordered:
            # A bare name may refer to a queue another process declared with bindings.
            declared = await self._run(self.store.queue_spec, spec.name)
            spec = declared or spec
        await self.declare(spec)
        limit = prefetch or spec.prefetch or self.prefetch
        consumer = _EmbeddedConsumer(self, spec, handler, limit, validate)
        self._consumers.add(consumer)
        return consumer

    async def request(
        self,
        routing_key: str,
        message: Envelope | bytes,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the deadline also goes with the message
    ) -> Envelope:
        """Ask the webhook, or with none configured, a responder on the queue."""
        if not self._connected:
            raise NotConnected("connect() the bus before sending requests")
        timeout = self.request_timeout if timeout is None else timeout
        correlation_id = correlation_id_for(message)
        if self._webhook is not None:
            body = await self._request_webhook(
                self._webhook, routing_key, message, timeout, correlation_id
            )
        else:
            body = await self._request_queue(routing_key, message, timeout, correlation_id)
        return parse_reply(message, body)

    async def _request_queue(
        self,
        routing_key: str,
        message: Envelope | bytes,
        timeout: float,  # noqa: ASYNC109 - the deadline also goes with the message
        correlation_id: str,
    ) -> bytes:
        deadline = time.time() + timeout

        return await self._send_and_wait(
            routing_key,
            correlation_id,
            timeout,
            lambda: self._store(
                routing_key,
                to_body(message),
                {DEADLINE_HEADER: f"{deadline:.3f}"},
                message_id_for(message),
                correlation_id=correlation_id,
                reply_to=self.owner,
                expires_at=deadline,
            ),
        )

    async def _request_webhook(
        self,
        webhook: Webhook,
        routing_key: str,
        message: Envelope | bytes,
        timeout: float,  # noqa: ASYNC109 - the deadline also goes with the message
        correlation_id: str,
    ) -> bytes:
        deadline = time.time() + timeout
        call = asyncio.create_task(
            webhook.call(routing_key, to_body(message), correlation_id, deadline),
            name=f"bus-webhook-{correlation_id}",
        )
        try:
            # At the deadline the caller gets its answer, but the call goes on, so that
            # a late reply is still received and kept as a dead letter.
            await asyncio.wait({call}, timeout=timeout)
            if call.done():
                return call.result()
            raise TimeoutError
        except asyncio.CancelledError:
            call.cancel()
            raise
        except TimeoutError:
            self._remember_expired(correlation_id, routing_key)
            self._background.add(call)
            call.add_done_callback(partial(self._late_webhook_reply, correlation_id, routing_key))
            raise RequestTimeout(routing_key, timeout, correlation_id) from None

    def _late_webhook_reply(
        self, correlation_id: str, routing_key: str, call: asyncio.Task[bytes]
    ) -> None:
        self._background.discard(call)
        if call.cancelled() or not self._connected:
            return
        exc = call.exception()
        if exc is not None:
            log.warning("bus.webhook_failed_after_deadline", error=str(exc))
            return
        self._spawn(
            self._keep_late_reply(correlation_id, call.result(), routing_key), "bus-late-reply"
        )

    # Dead letters and results.

    async def list_dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters."""
        return await self._run(self.store.list_dead_letters, limit)

    async def dead_letter_count(self) -> int:
        """How many dead letters the store keeps (one count on its index by age)."""
        return await self._run(self.store.dead_letter_count)

    async def dead_letter_page(self, after: int, limit: int) -> DeadLetterPage:
        """The dead letters after the cursor ``after``, without their bodies."""
        return await self._run(self.store.dead_letter_page, after, limit)

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """One dead letter by id."""
        return await self._run(self.store.get_dead_letter, dead_letter_id)

    async def replay_dead_letter(self, dead_letter_id: str, *, body: bytes | None = None) -> str:
        """Put the dead letter back on its queue; returns its message id."""
        letter = await self.get_dead_letter(dead_letter_id)
        queue = await self._run(self.store.replay_dead_letter, dead_letter_id, body)
        self._wake(queue)
        return letter.message_id

    async def delete_dead_letter(self, dead_letter_id: str) -> None:
        """Remove a dead letter."""
        await self._run(self.store.delete_dead_letter, dead_letter_id)

    async def keep_invalid(
        self, body: bytes, headers: Mapping[str, str], reason: str, error: str | None
    ) -> str:
        """Keep a message the HTTP API refused as a dead letter, so nothing is lost."""
        return await self._run(
            self.store.add_dead_letter,
            queue=HTTP_API_QUEUE,
            routing_key="",
            body=body,
            headers=headers,
            reason=reason,
            error=error,
        )

    async def results_after(self, after: int, limit: int) -> ResultPage:
        """The delivery results and replies for the backend kept after cursor ``after``."""
        return await self._run(self.store.results_after, after, limit)
