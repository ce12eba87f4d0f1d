"""The internal queue's one small interface, shared by every adapter.

The acknowledge contract lives in one place, :meth:`IncomingMessage.process`, as in
aio-pika's ``message.process()``. Leaving the block normally acknowledges the message;
an exception settles it by kind:

* a :class:`~hubject_connector.bus.contract.ContractError` (not JSON, unknown type, schema
  error) dead-letters it with the error's text, which names the field by JSON pointer;
* an exception whose ``transient`` attribute is true (``TransportError``, ``BusError``,
  :class:`RetryLater`, ...) schedules a delayed retry after the next of the queue's
  retry delays (``QueueSpec.retry_delays``, by default ``BusConfig.retry_delays_seconds``);
  once those are used up, it is dead-lettered;
* any other exception dead-letters it with the exception's class and text.

The exception is handled there and not raised further: one bad message never stops a
consumer nor blocks the queue behind it. Cancellation (shutdown) hands the message back
for redelivery instead. Delivery is at least once: a handler must tolerate seeing a
message again after a crash (``message_id`` stays the same across retries and replays).

Routing follows AMQP's topic exchange on every adapter: ``publish`` takes a routing key
(by convention the envelope's type), and a queue receives what matches one of its
binding patterns (``*`` one dot-separated word, ``#`` zero or more). A queue with no
explicit bindings is bound to its own name.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Final, Self

import structlog

from hubject_connector.bus.contract import (
    ContractError,
    ContractIssue,
    Envelope,
    parse_envelope,
)
from hubject_connector.errors import BusError
from hubject_connector.logs import mask_text

log = structlog.get_logger(__name__)

#: Header carrying how many delayed retries a message has had so far.
RETRIES_HEADER: Final = "x-retries"
#: Header of a dead letter: why it was dead-lettered, for people.
REASON_HEADER: Final = "x-death-reason"
#: Header of a dead letter: the exception class that dead-lettered it, for machines.
ERROR_HEADER: Final = "x-error"
#: Headers of a dead letter naming where the original message was.
ORIGINAL_QUEUE_HEADER: Final = "x-original-queue"
ORIGINAL_ROUTING_KEY_HEADER: Final = "x-original-routing-key"
ORIGINAL_MESSAGE_ID_HEADER: Final = "x-original-message-id"
DEAD_LETTERED_AT_HEADER: Final = "x-dead-lettered-at"
#: Header of a request: the Unix time after which nobody waits for the reply.
DEADLINE_HEADER: Final = "x-deadline"

#: Headers the bus adds to a dead letter; a replay removes them again.
DEAD_LETTER_HEADERS: Final = frozenset(
    {
        REASON_HEADER,
        ERROR_HEADER,
        ORIGINAL_QUEUE_HEADER,
        ORIGINAL_ROUTING_KEY_HEADER,
        ORIGINAL_MESSAGE_ID_HEADER,
        DEAD_LETTERED_AT_HEADER,
        RETRIES_HEADER,
    }
)

#: How long a consumer lets handlers in flight finish when cancelled, by default.
CLOSE_GRACE_SECONDS: Final = 10.0

#: The queue name dead letters carry when they did not come from a work queue.
LATE_REPLIES: Final = "late-replies"


class RetryLater(BusError):
    """Raised by a handler to ask for a delayed retry (the failure is temporary)."""

    transient = True


class RequestTimeout(BusError):
    """No reply arrived before the deadline of :meth:`Bus.request`.

    A reply that still arrives later is dead-lettered with the reason "late reply",
    so it is logged and can be inspected, never silently dropped.
    """

    transient = True

    def __init__(self, routing_key: str, timeout: float, correlation_id: str) -> None:
        super().__init__(
            f"no reply to {routing_key!r} within {timeout:g} s (correlation id {correlation_id})"
        )
        self.routing_key = routing_key
        self.timeout = timeout
        self.correlation_id = correlation_id


class RequestFailed(BusError):
    """The responder answered, but not with a reply (an HTTP error from the webhook)."""

    transient = False


class Unroutable(BusError):
    """No queue is bound to the routing key, so the message would be lost.

    Transient: the queue may be declared later (the consumer not started yet).
    """

    transient = True

    def __init__(self, routing_key: str) -> None:
        super().__init__(f"no queue is bound to routing key {routing_key!r}")
        self.routing_key = routing_key


class NotConnected(BusError):
    """The bus is not connected (``connect()`` not called, or closed)."""

    transient = True


class DeadLetterNotFound(BusError):
    """No dead letter has that id."""

    transient = False

    def __init__(self, dead_letter_id: str) -> None:
        super().__init__(f"no dead letter with id {dead_letter_id!r}")
        self.dead_letter_id = dead_letter_id


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A work queue: its name, what it receives, and whether order matters.

    ``ordered`` queues have one active consumer across all replicas (RabbitMQ's single
    active consumer) handling one message at a time, for pushes whose order matters.
    Retries of an ordered queue's message go to the back of the queue, so use them
    where the newest message wins anyway (status) or order is rechecked by the handler.
    Unordered queues have competing consumers.
    """

    name: str
    #: Routing key patterns; empty means the queue's own name.
    bindings: tuple[str, ...] = ()
    ordered: bool = False
    #: Pauses before each delayed retry of a transient failure, overriding the bus's
    #: ``BusConfig.retry_delays_seconds`` for this queue; once used up, dead-lettered.
    retry_delays: tuple[float, ...] | None = None
    #: Messages handed to the handler at once; None: the bus's default.
    prefetch: int | None = None

    @property
    def patterns(self) -> tuple[str, ...]:
        """The binding patterns in force."""
        return self.bindings or (self.name,)

    def delays(self, default: tuple[float, ...]) -> tuple[float, ...]:
        """The retry delays in force: the queue's own, else ``default`` (the bus's)."""
        return default if self.retry_delays is None else self.retry_delays


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message the bus gave up on, with why, as the ``dlq`` commands show it."""

    id: str
    #: The work queue it was taken from (or ``late-replies``, ``http-api``, ...).
    queue: str
    routing_key: str
    reason: str
    #: The exception class that dead-lettered it, if one did.
    error: str | None
    #: The original message, byte for byte, and its headers (without the bus's own).
    body: bytes
    headers: Mapping[str, str]
    message_id: str
    retries: int
    dead_lettered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LateReply:
    """A reply that arrived after its request's deadline (kept as a dead letter too)."""

    correlation_id: str | None
    #: The request's routing key, when this bus sent the request.
    routing_key: str
    body: bytes
    reason: str


#: What a handler returns: a reply (sent when the message asked for one) or nothing.
Reply = Envelope | bytes | None
Handler = Callable[["IncomingMessage"], Awaitable[Reply]]


def to_body(message: Envelope | bytes) -> bytes:
    """The bytes of an envelope or of raw bytes."""
    return message if isinstance(message, bytes) else message.to_bytes()


def correlation_id_for(message: Envelope | bytes) -> str:
    """A request's correlation id: the envelope's id, as the contract says replies carry."""
    return str(uuid.uuid4()) if isinstance(message, bytes) else message.id


def message_id_for(message: Envelope | bytes) -> str:
    """The envelope's own id (so retries and replays keep it), or a new one for bytes."""
    return str(uuid.uuid4()) if isinstance(message, bytes) else message.id


def parse_reply(request: Envelope | bytes, body: bytes) -> Envelope:
    """The reply envelope; a ``ContractError`` if it is invalid or answers another message."""
    reply = parse_envelope(body)
    if isinstance(request, Envelope) and reply.correlation_id != request.id:
        raise ContractError(
            [
                ContractIssue(
                    "/correlationid",
                    f"must be the request's id {request.id!r}, not {reply.correlation_id!r}",
                )
            ],
            message_id=reply.id,
            message_type=str(reply.type),
        )
    return reply


def describe(exc: BaseException) -> tuple[str, str]:
    """(reason text, error class path) for dead-lettering because of ``exc``."""
    cls = type(exc)
    # Library errors quote URLs and bodies: keep passwords and card data out of reasons.
    text = mask_text(str(exc) or repr(exc))
    return f"{cls.__name__}: {text}", f"{cls.__module__}.{cls.__qualname__}"


def clean_headers(headers: Mapping[str, object]) -> dict[str, str]:
    """Headers as strings (AMQP headers may be numbers, bytes or tables)."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        if isinstance(value, bytes):
            out[key] = value.decode("utf-8", "replace")
        elif isinstance(value, str | int | float | bool):
            out[key] = str(value)
    return out


def topic_matches(pattern: str, routing_key: str) -> bool:
    """Whether ``routing_key`` matches an AMQP topic ``pattern`` (``*`` one word, ``#`` any)."""
    return _match(pattern.split("."), routing_key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        # "#" swallows zero or more words: try every split.
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head in ("*", words[0])) and _match(rest, words[1:])


@dataclass(frozen=True, slots=True)
class Retry:
    """Outcome of a failure: deliver again after ``delay`` seconds."""

    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class DeadLetterOutcome:
    """Outcome of a failure: dead-letter with ``reason`` (``error``: the exception class)."""

    reason: str
    error: str


def disposition(
    exc: BaseException, retries: int, retry_delays: tuple[float, ...]
) -> Retry | DeadLetterOutcome:
    """What to do with a message whose handling raised ``exc`` after ``retries`` retries.

    Contract errors are never retried (the same bytes fail the same way); transient
    errors are retried while delays are left; everything else is dead-lettered at once.
    """
    reason, error = describe(exc)
    if isinstance(exc, ContractError) or not getattr(exc, "transient", False):
        return DeadLetterOutcome(reason, error)
    if retries < len(retry_delays):
        return Retry(retry_delays[retries], reason)
    return DeadLetterOutcome(f"gave up after {retries} retries: {reason}", error)


class IncomingMessage(abc.ABC):
    """One delivered message, settled exactly once, through :meth:`process`.

    Adapters implement the settle operations; the decision of which one to use is
    made here only.
    """

    def __init__(
        self,
        *,
        body: bytes,
        headers: Mapping[str, str],
        message_id: str,
        queue: str,
        routing_key: str,
        retries: int,
        retry_delays: tuple[float, ...],
        redelivered: bool = False,
        correlation_id: str | None = None,
        reply_to: str | None = None,
    ) -> None:
        self.body = body
        self.headers: Mapping[str, str] = dict(headers)
        self.message_id = message_id
        self.queue = queue
        self.routing_key = routing_key
        #: Delayed retries this message has had so far (0 on first delivery).
        self.retries = retries
        #: Whether the broker delivered it before (to a consumer that died or let go).
        self.redelivered = redelivered
        self.correlation_id = correlation_id
        self.reply_to = reply_to
        self._retry_delays = retry_delays
        self._envelope: Envelope | None = None
        self._settled = False

    @property
    def envelope(self) -> Envelope:
        """The body parsed by the message contract (raises ``ContractError``)."""
        if self._envelope is None:
            self._envelope = parse_envelope(self.body)
        return self._envelope

    @property
    def settled(self) -> bool:
        """Whether the message was acknowledged, retried, dead-lettered or released."""
        return self._settled

    @contextlib.asynccontextmanager
    async def process(self) -> AsyncIterator[Self]:
        """Acknowledge on success; retry, dead-letter or release on failure (module doc)."""
        if self._settled:
            raise BusError(f"message {self.message_id} was already settled")
        try:
            yield self
        except Exception as exc:  # every failure is settled, none escapes
            if self.settled:
                log.error("bus.handler_failed_after_settling", queue=self.queue, error=repr(exc))
                return
            await self._fail(exc)
        except BaseException:
            # Cancelled (shutdown) or interrupted: hand it back for another consumer.
            if not self._settled:
                await self._settle("release", self._release)
            raise
        else:
            # The block may have settled it itself (dead_letter()); otherwise it succeeded.
            if not self._settled:
                await self._settle("ack", self._ack)

    async def dead_letter(self, reason: str, error: str | None = None) -> None:
        """Dead-letter the message now with ``reason`` (for handlers that decide so)."""
        await self._settle("dead_letter", lambda: self._dead_letter(reason, error))

    async def _fail(self, exc: Exception) -> None:
        outcome = disposition(exc, self.retries, self._retry_delays)
        if isinstance(outcome, Retry):
            log.info(
                "bus.retry_scheduled",
                queue=self.queue,
                message_id=self.message_id,
                retry=self.retries + 1,
                delay_seconds=outcome.delay,
                reason=outcome.reason,
            )
            await self._settle("retry", lambda: self._retry(outcome.delay))
            return
        log.warning(
            "bus.dead_lettered",
            queue=self.queue,
            message_id=self.message_id,
            reason=outcome.reason,
            error=outcome.error,
        )
        await self._settle("dead_letter", lambda: self._dead_letter(outcome.reason, outcome.error))

    async def _settle(self, action: str, operation: Callable[[], Awaitable[None]]) -> None:
        if self._settled:
            raise BusError(f"message {self.message_id} was already settled")
        self._settled = True
        try:
            await operation()
        except Exception as exc:
            # The connection or file failed under us. The message was not settled, so
            # the broker (or the expired lease) delivers it again: nothing is lost.
            log.warning(
                "bus.settle_failed",
                action=action,
                queue=self.queue,
                message_id=self.message_id,
                error=str(exc),
            )

    async def reply(self, reply: Envelope | bytes) -> None:
        """Send ``reply`` to whoever asked (no-op when the message asked for none)."""
        if self.reply_to is None or self.correlation_id is None:
            log.warning("bus.reply_without_requester", queue=self.queue, message_id=self.message_id)
            return
        await self._reply(reply)

    @abc.abstractmethod
    async def _ack(self) -> None:
        """Remove the message for good."""

    @abc.abstractmethod
    async def _retry(self, delay: float) -> None:
        """Deliver the message again after ``delay`` seconds with ``retries + 1``."""

    @abc.abstractmethod
    async def _dead_letter(self, reason: str, error: str | None) -> None:
        """Move the message to the dead letters with ``reason``."""

    @abc.abstractmethod
    async def _release(self) -> None:
        """Hand the message back for immediate redelivery."""

    @abc.abstractmethod
    async def _reply(self, reply: Envelope | bytes) -> None:
        """Send ``reply`` to ``reply_to`` with ``correlation_id``."""


class Consumer(abc.ABC):
    """A running subscription of a handler to a queue.

    Each delivered message is handled in a task of its own, tracked here, so that
    :meth:`cancel` can let the handlers in flight finish before it returns.
    """

    def __init__(self, spec: QueueSpec, handler: Handler, validate: bool) -> None:
        self._spec = spec
        self._handler = handler
        self._validate = validate
        self._inflight: set[asyncio.Task[None]] = set()

    @abc.abstractmethod
    async def cancel(self, grace: float = CLOSE_GRACE_SECONDS) -> None:
        """Stop taking messages; let handlers in flight settle theirs for ``grace`` seconds
        (then they are cancelled and their messages handed back)."""

    def _start_handling(self, message: IncomingMessage) -> None:
        # Our own task, not the transport's: a dropped channel must not cancel a handler.
        task = asyncio.create_task(self._handle(message))
        self._inflight.add(task)
        task.add_done_callback(self._handled)

    def _handled(self, task: asyncio.Task[None]) -> None:
        """Called when a handler task ends; adapters extend it (to claim more)."""
        self._inflight.discard(task)

    async def _handle(self, message: IncomingMessage) -> None:
        try:
            await run_handler(message, self._handler, validate=self._validate)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one message never kills the consumer
            log.error("bus.handler_crashed", queue=self._spec.name, error=repr(exc))

    async def _drain(self, grace: float) -> None:
        """Let handlers in flight finish for ``grace`` seconds, then cancel the rest.

        A cancelled handler releases its message (see :meth:`IncomingMessage.process`).
        """
        if not self._inflight:
            return
        _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)


async def run_handler(message: IncomingMessage, handler: Handler, *, validate: bool) -> None:
    """The one delivery path of every adapter: validate, handle, reply, settle."""
    async with message.process():
        if validate:
            message.envelope  # noqa: B018 - parse now: a ContractError dead-letters it
        reply = await handler(message)
        if reply is not None and message.reply_to is not None:
            await message.reply(reply)


class Bus(abc.ABC):
    """The internal queue. Use as ``async with bus:`` or call connect() and close()."""

    def __init__(
        self,
        *,
        retry_delays: tuple[float, ...],
        request_timeout: float,
        queues: Iterable[QueueSpec] = (),
    ) -> None:
        self.retry_delays = tuple(retry_delays)
        self.request_timeout = request_timeout
        # The queues declared at connect(), and every one declared since, by name: a
        # consumer given a bare name gets the bindings, order and retry delays declared.
        self._queue_specs: dict[str, QueueSpec] = {}
        for spec in queues:
            self._queue_specs[spec.name] = spec
        # Correlation ids of requests that timed out, to word a late reply's reason.
        self._expired: dict[str, tuple[str, float]] = {}
        self._pending = PendingRequests()
        #: Called with each reply that came after its request's deadline (after it was
        #: kept as a dead letter), e.g. to send the backend a "dropped" delivery result.
        self.on_late_reply: Callable[[LateReply], Awaitable[None]] | None = None

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def queues(self) -> tuple[QueueSpec, ...]:
        """The work queues this bus declares at connect() or declared since."""
        return tuple(self._queue_specs.values())

    def _spec(self, queue: QueueSpec | str) -> QueueSpec:
        """The spec of ``queue``: as given, or as declared under that name."""
        if isinstance(queue, QueueSpec):
            return queue
        return self._queue_specs.get(queue) or QueueSpec(queue)

    def _remember(self, spec: QueueSpec) -> None:
        self._queue_specs[spec.name] = spec

    def _all_retry_delays(self) -> list[float]:
        """Every distinct retry delay of the bus and its known queues, shortest first."""
        delays = set(self.retry_delays)
        for spec in self._queue_specs.values():
            delays.update(spec.delays(self.retry_delays))
        return sorted(delays)

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool:
        """Whether the bus can take and deliver messages now (for readiness)."""

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the connection or file; declare the shared topology and the bus's queues.

        Every queue given as ``queues=`` exists with its bindings (and, on RabbitMQ, its
        retry and dead-letter arguments) once this returns, before any consumer runs: what
        a backend publishes from then on waits in its queue.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop consumers (letting handlers in flight finish), fail waiting requests, close."""

    @abc.abstractmethod
    async def declare(self, queue: QueueSpec | str) -> None:
        """Create the queue and its bindings if missing (idempotent)."""

    @abc.abstractmethod
    async def publish(
        self,
        routing_key: str,
        message: Envelope | bytes,
        *,
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
    ) -> str:
        """Store ``message`` durably for every queue bound to ``routing_key``.

        Returns the message id once the broker confirmed it or the row is committed.
        Raises :class:`Unroutable` when no queue is bound, rather than dropping it.
        """

    @abc.abstractmethod
    async def consume(
        self,
        queue: QueueSpec | str,
        handler: Handler,
        *,
        prefetch: int | None = None,
        validate: bool = True,
    ) -> Consumer:
        """Deliver the queue's messages to ``handler`` until the consumer is cancelled.

        ``validate`` parses the body by the message contract before the handler runs, so
        a poison message is dead-lettered with the field at fault. A handler's return
        value is sent as the reply when the message is a request (see :meth:`serve`).
        Returns once the consumer is registered.
        """

    async def serve(self, queue: QueueSpec | str, handler: Handler) -> Consumer:
        """Answer requests from ``queue``: the handler's return value is the reply."""
        return await self.consume(queue, handler)

    @abc.abstractmethod
    async def request(
        self,
        routing_key: str,
        message: Envelope | bytes,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the deadline also goes with the message
    ) -> Envelope:
        """Send a request and wait for its reply for at most ``timeout`` seconds.

        Raises :class:`RequestTimeout` after the deadline (default
        ``BusConfig.request_timeout_seconds``); a ``ContractError`` if the reply is invalid.
        """

    # Dead letters, for the ``dlq list|show|replay|delete`` commands.

    @abc.abstractmethod
    async def list_dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters, oldest first."""

    @abc.abstractmethod
    async def dead_letter_count(self) -> int:
        """How many dead letters wait now (for the ``bus_dead_letters`` gauge): one cheap
        query, never a scan of the letters."""

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """One dead letter by id (raises :class:`DeadLetterNotFound`)."""
        for letter in await self.list_dead_letters(limit=1_000_000):
            if letter.id == dead_letter_id:
                return letter
        raise DeadLetterNotFound(dead_letter_id)

    @abc.abstractmethod
    async def replay_dead_letter(self, dead_letter_id: str, *, body: bytes | None = None) -> str:
        """Put a dead letter back on its queue as new (retries reset), then remove it.

        ``body`` replaces the original body (a corrected message). Returns the message id.
        """

    @abc.abstractmethod
    async def delete_dead_letter(self, dead_letter_id: str) -> None:
        """Remove a dead letter for good."""

    # Helpers for adapters.

    async def _send_and_wait(
        self,
        routing_key: str,
        correlation_id: str,
        timeout: float,  # noqa: ASYNC109 - the deadline also goes with the message
        send: Callable[[], Awaitable[object]],
    ) -> bytes:
        """Run ``send`` and wait for the reply to ``correlation_id``, both within ``timeout``.

        Raises :class:`RequestTimeout` at the deadline and remembers the correlation id,
        so that a reply still arriving later is recognised as late.
        """
        future = self._pending.add(correlation_id)
        try:
            async with asyncio.timeout(timeout):
                await send()
                return await future
        except TimeoutError:
            self._remember_expired(correlation_id, routing_key)
            raise RequestTimeout(routing_key, timeout, correlation_id) from None
        finally:
            self._pending.discard(correlation_id)

    def _remember_expired(self, correlation_id: str, routing_key: str) -> None:
        now = time.monotonic()
        self._expired[correlation_id] = (routing_key, now)
        # Keep the memory bounded: forget expiries older than an hour.
        for key, (_, at) in list(self._expired.items()):
            if now - at > 3600:
                del self._expired[key]

    def _late_reply(self, correlation_id: str | None, body: bytes, routing_key: str) -> LateReply:
        expired = self._expired.pop(correlation_id or "", None)
        if expired is None:
            reason = f"late reply: no request waits for correlation id {correlation_id}"
        else:
            routing_key, at = expired
            reason = (
                f"late reply: the reply to {routing_key!r} (correlation id {correlation_id}) "
                f"arrived {time.monotonic() - at:.1f} s after its deadline"
            )
        return LateReply(correlation_id, routing_key, body, reason)

    async def _report_late_reply(self, late: LateReply) -> None:
        """Log a late reply (already kept as a dead letter) and tell the listener."""
        log.warning(
            "bus.late_reply",
            correlation_id=late.correlation_id,
            routing_key=late.routing_key,
            reason=late.reason,
        )
        if self.on_late_reply is None:
            return
        try:
            await self.on_late_reply(late)
        except Exception as exc:  # the listener's failure must not lose the reply's record
            log.error("bus.late_reply_listener_failed", error=repr(exc))


@dataclass(slots=True)
class PendingRequests:
    """Futures of requests waiting for a reply, keyed by correlation id."""

    futures: dict[str, asyncio.Future[bytes]] = field(default_factory=dict)

    def add(self, correlation_id: str) -> asyncio.Future[bytes]:
        """A new future for ``correlation_id``."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.futures[correlation_id] = future
        return future

    def resolve(self, correlation_id: str | None, body: bytes) -> bool:
        """Hand ``body`` to the waiting request; False if none waits (a late reply)."""
        future = self.futures.pop(correlation_id or "", None)
        if future is None or future.done():
            return False
        future.set_result(body)
        return True

    def discard(self, correlation_id: str) -> None:
        """Forget a request (answered or timed out)."""
        self.futures.pop(correlation_id, None)

    def fail_all(self, exc: BaseException) -> None:
        """Fail every waiting request (the bus is closing)."""
        for future in self.futures.values():
            if not future.done():
                future.set_exception(exc)
        self.futures.clear()
