"""The RabbitMQ adapter (aio-pika, robust connection, publisher confirms, manual acks).

Topology, all names derived from ``[bus.rabbitmq]`` (defaults in brackets):

* ``exchange`` ["hubject-connector"]: a durable topic exchange; the backend publishes its
  events there with the message type as routing key, and the connector its results.
* work queue ``{queue_prefix}.{name}`` ["hubject-connector.<name>"]: durable, a quorum
  queue where the broker supports it (classic otherwise, or where a classic one already
  exists), bound to the exchange by the queue's patterns, dead-lettering to the DLX.
  Quorum work queues have ``x-delivery-limit`` (``delivery_limit``): a message whose
  handling kills the process is delivered again, but not forever; past the limit the
  broker dead-letters it, ``at-least-once`` (``x-dead-letter-strategy``, which needs
  ``x-overflow: reject-publish``) so that it cannot vanish on the way to the DLX.
  Ordered queues have ``x-single-active-consumer``: one replica consumes, the others
  wait and take over when it goes away. Unordered ones have competing consumers.
  Every queue given as ``queues=`` is declared by ``connect()``, before any consumer.
* ``dead_letter_exchange`` ["hubject-connector.dlx"] (topic) and the queue
  ``{queue_prefix}.dead-letters`` bound with "#", a classic queue because ``dlq list``
  reads it by getting and returning messages, which a quorum queue counts as deliveries.
  Each dead letter is the original body and headers plus ``x-death-reason`` (why),
  ``x-error`` (the exception class), ``x-original-queue`` (the broker's name of the queue
  it was taken from), ``x-original-routing-key``, ``x-original-message-id``,
  ``x-retries`` and ``x-dead-lettered-at`` (docs/contract.md lists them); it is routed
  with the work queue's own name, which is how ``dlq`` finds its way back.
* one retry exchange and queue per distinct delay (of the bus and of every queue's own
  ``retry_delays``), ``{exchange}.retry.{ms}ms`` and ``{queue_prefix}.retry.{ms}ms``: the
  queue (quorum like the work queues, where the broker supports it) has that message TTL
  and dead-letters to the default exchange, so a message published there with the work
  queue's name as routing key comes back to that queue after the delay. The work queue
  keeps flowing meanwhile, and no broker plugin is needed.
* ``{queue_prefix}.replies.{instance}``: an exclusive reply queue per connector instance;
  requests carry ``reply_to`` and ``correlation_id``, and futures wait by correlation id.
* the backend's queues ``{queue_prefix}.backend.commands`` and ``.backend.results``
  (:func:`backend_queues`), declared at connect like work queues, so that a command or a
  delivery result published before the backend first started waits for it there instead
  of being refused as unroutable. A backend that declared one first with arguments of its
  own keeps it as it is; the connector only binds it.

Queues already declared by an older version with other arguments are kept as they are:
a declaration the broker refuses (PRECONDITION_FAILED) is probed on a throwaway channel
and the next older set of arguments tried, down to a classic queue.

After a dropped connection, aio-pika's robust connection reconnects and declares the
topology and consumers again. Messages whose handlers were running are not acked on the
new channel (their delivery tags died with the old one): the broker delivers them again,
often while their first handlers still run. Such a redelivery waits for the first
handler, and is acked without being handled again when that one got to the end (only
its ack was lost): a CDR is not sent to Hubject twice, nor its result published twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import aio_pika
import aio_pika.abc
import aiormq
import structlog
from aio_pika.exceptions import (
    AMQPError,
    ChannelClosed,
    ChannelInvalidStateError,
    DeliveryError,
    PublishError,
)
from yarl import URL

from hubject_connector.bus.base import (
    CLOSE_GRACE_SECONDS,
    DEAD_LETTER_HEADERS,
    DEAD_LETTERED_AT_HEADER,
    DEADLINE_HEADER,
    ERROR_HEADER,
    LATE_REPLIES,
    ORIGINAL_MESSAGE_ID_HEADER,
    ORIGINAL_QUEUE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
    RETRIES_HEADER,
    Bus,
    Consumer,
    DeadLetter,
    DeadLetterNotFound,
    Handler,
    IncomingMessage,
    NotConnected,
    QueueSpec,
    Unroutable,
    clean_headers,
    correlation_id_for,
    message_id_for,
    parse_reply,
    to_body,
)
from hubject_connector.bus.contract import (
    CLOUDEVENTS_CONTENT_TYPE,
    MESSAGE_SPECS,
    Direction,
    Envelope,
)
from hubject_connector.config import BusConfig, RabbitMQConfig
from hubject_connector.errors import BusError

log = structlog.get_logger(__name__)

CONTENT_TYPE: Final = CLOUDEVENTS_CONTENT_TYPE
#: How long a publish waits for the broker's confirm (or for a reconnection) in all.
PUBLISH_TIMEOUT_SECONDS: Final = 30.0
#: Messages remembered per consumer as handled with their ack lost (see ``ack_lost``).
ACK_LOST_MEMORY: Final = 10_000
#: Headers the broker sets on what it dead-letters or redelivers; not copied to a retry.
_BROKER_HEADERS: Final = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count")

# Errors that mean "the connection or channel is gone for now"; a robust connection heals.
_CONNECTION_ERRORS: Final = (
    ChannelInvalidStateError,
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelClosed,
    ConnectionError,
    RuntimeError,  # aiormq: "Writer is None" / closed transport during reconnection
)


@dataclass(frozen=True, slots=True)
class RabbitMQNames:
    """Every exchange and queue name, derived from the configuration."""

    config: RabbitMQConfig

    @property
    def exchange(self) -> str:
        """The topic exchange for events and results."""
        return self.config.exchange

    @property
    def dead_letter_exchange(self) -> str:
        """The topic exchange dead letters go through (routing key: their queue)."""
        return self.config.dead_letter_exchange

    @property
    def dead_letter_queue(self) -> str:
        """The queue holding the dead letters."""
        return f"{self.config.queue_prefix}.dead-letters"

    def queue(self, name: str) -> str:
        """The broker's name of the work queue ``name``."""
        return f"{self.config.queue_prefix}.{name}"

    def logical(self, physical: str) -> str:
        """The work queue's own name from the broker's name."""
        prefix = f"{self.config.queue_prefix}."
        return physical[len(prefix) :] if physical.startswith(prefix) else physical

    def retry_exchange(self, delay: float) -> str:
        """The exchange of the retry queue with ``delay``."""
        return f"{self.config.exchange}.retry.{_ms(delay)}ms"

    def retry_queue(self, delay: float) -> str:
        """The queue holding messages for ``delay`` before they return to their queue."""
        return f"{self.config.queue_prefix}.retry.{_ms(delay)}ms"

    def reply_queue(self, instance: str) -> str:
        """The exclusive reply queue of one connector instance."""
        return f"{self.config.queue_prefix}.replies.{instance}"


def backend_queues() -> list[QueueSpec]:
    """The backend's queues, each bound to the connector-to-backend types routed to it.

    docs/contract.md names them (``backend.commands``, ``backend.results``); they come from
    ``MessageSpec.queue`` of the types the connector sends (replies travel to ``reply_to``).
    """
    bindings: dict[str, list[str]] = {}
    for spec in MESSAGE_SPECS.values():
        if spec.direction is Direction.TO_BACKEND and spec.queue is not None:
            bindings.setdefault(spec.queue, []).append(str(spec.type))
    return [QueueSpec(queue, bindings=tuple(types)) for queue, types in bindings.items()]


def _ms(delay: float) -> int:
    return max(1, round(delay * 1000))


def _candidates(
    classic: dict[str, Any], config: RabbitMQConfig, *, delivery_limit: bool = False
) -> list[dict[str, Any]]:
    """The arguments to declare a queue with, preferred first, older ones after.

    The newest: a quorum queue dead-lettering at least once (RabbitMQ 3.10; the strategy
    needs ``x-overflow: reject-publish``), work queues with a delivery limit. Then the
    quorum queue of earlier versions, then a classic queue (a broker without quorum
    queues, or a queue declared classic before). ``quorum_queues = false`` puts classic
    first.
    """
    quorum = {**classic, "x-queue-type": "quorum"}
    newest = {**quorum, "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    if delivery_limit:
        newest["x-delivery-limit"] = config.delivery_limit
    plain = {**classic, "x-queue-type": "classic"}
    return [newest, quorum, plain] if config.quorum_queues else [plain, newest, quorum]


def _redacted(url: str) -> str:
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


def _channel_of(delivery: aio_pika.abc.AbstractIncomingMessage) -> object | None:
    """The AMQP channel a delivery came on; None once it is closed."""
    try:
        return delivery.channel
    except Exception:  # aio-pika raises when the channel is closed
        return None


class AckCoalescer:
    """The acks of one consumer, sent in fewer frames (each frame a system call).

    Acks asked for during one turn of the event loop go out at its end: those whose
    delivery tags are the lowest still open on their channel as one ``basic.ack`` with
    ``multiple``, the others one by one. None waits for a later turn, so a slow handler
    holds back no other message's ack (nor the prefetch window). A tag stays open until
    its own settlement has been written, so a ``multiple`` ack can never cover a message
    that is being handed back (``nack``) or that is still being handled.
    """

    def __init__(self) -> None:
        # Per channel (a reconnected one is a new object): its open delivery tags in the
        # order delivered, each with its delivery and the future of an ack asked for.
        self._open: dict[object, dict[int, tuple[aio_pika.abc.AbstractIncomingMessage,
                                                  asyncio.Future[None] | None]]] = {}
        self._asked: list[tuple[object, int]] = []
        self._flush_scheduled = False
        self._sending: set[asyncio.Task[None]] = set()

    def opened(self, delivery: aio_pika.abc.AbstractIncomingMessage) -> None:
        """Note a delivery before it is handled."""
        channel = _channel_of(delivery)
        if channel is not None and delivery.delivery_tag is not None:
            self._open.setdefault(channel, {})[delivery.delivery_tag] = (delivery, None)

    async def ack(self, delivery: aio_pika.abc.AbstractIncomingMessage) -> None:
        """Ack ``delivery`` at the end of this turn of the loop (see the class doc)."""
        channel = _channel_of(delivery)
        tag = delivery.delivery_tag
        tags = self._open.get(channel) if channel is not None else None
        if tags is None or tag is None or tag not in tags:
            await delivery.ack()
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        tags[tag] = (delivery, future)
        self._asked.append((channel, tag))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        await future

    async def alone(self, delivery: aio_pika.abc.AbstractIncomingMessage,
                    settle: Callable[[], Awaitable[None]]) -> None:
        """Run another settlement of ``delivery`` (a nack); its tag stays open meanwhile."""
        try:
            await settle()
        finally:
            self._close(_channel_of(delivery), delivery.delivery_tag)

    def _close(self, channel: object | None, tag: int | None) -> None:
        tags = self._open.get(channel) if channel is not None else None
        if tags is not None and tag is not None:
            tags.pop(tag, None)
            if not tags:
                del self._open[channel]

    def _flush(self) -> None:
        self._flush_scheduled = False
        asked, self._asked = self._asked, []
        for channel in dict.fromkeys(c for c, _ in asked):
            tags = self._open.get(channel)
            if tags is None:
                continue
            # The run of asked acks at the front of the channel's open tags: one frame.
            run: list[tuple[aio_pika.abc.AbstractIncomingMessage, asyncio.Future[None]]] = []
            for delivery, future in tags.values():
                if future is None:
                    break
                run.append((delivery, future))
            for delivery, _ in run:
                del tags[delivery.delivery_tag]  # type: ignore[arg-type]
            if run:
                self._send(run[-1][0], [f for _, f in run], multiple=len(run) > 1)
            # Those behind a tag still open: one frame each, now.
            for asked_channel, tag in asked:
                entry = tags.get(tag) if asked_channel is channel else None
                if entry is not None and entry[1] is not None:
                    del tags[tag]
                    self._send(entry[0], [entry[1]], multiple=False)
            if not tags:
                del self._open[channel]

    def _send(self, delivery: aio_pika.abc.AbstractIncomingMessage,
              futures: list[asyncio.Future[None]], *, multiple: bool) -> None:
        task = asyncio.get_running_loop().create_task(self._ack_frame(delivery, futures,
                                                                      multiple))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    @staticmethod
    async def _ack_frame(delivery: aio_pika.abc.AbstractIncomingMessage,
                         futures: list[asyncio.Future[None]], multiple: bool) -> None:
        try:
            await delivery.ack(multiple=multiple)
        except Exception as exc:  # the channel closed: each waiting ack fails with it
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        else:
            for future in futures:
                if not future.done():
                    future.set_result(None)


class RabbitMQMessage(IncomingMessage):
    """A delivery from a RabbitMQ work queue."""

    def __init__(
        self,
        bus: RabbitMQBus,
        delivery: aio_pika.abc.AbstractIncomingMessage,
        spec: QueueSpec,
        acks: AckCoalescer | None = None,
    ) -> None:
        headers = clean_headers(delivery.headers or {})
        try:
            # Whoever publishes can set the header: a negative count would index the
            # retry delays from the end (or past it).
            retries = max(0, int(headers.get(RETRIES_HEADER, "0")))
        except ValueError:
            retries = 0
        super().__init__(
            body=delivery.body,
            headers=headers,
            message_id=delivery.message_id or str(uuid.uuid4()),
            queue=spec.name,
            # A retried or replayed copy comes back through the default exchange, routed
            # by the queue's name: the header keeps the routing key it was published with.
            routing_key=headers.get(ORIGINAL_ROUTING_KEY_HEADER) or delivery.routing_key or "",
            retries=retries,
            retry_delays=spec.delays(bus.retry_delays),
            redelivered=bool(delivery.redelivered),
            correlation_id=delivery.correlation_id,
            reply_to=delivery.reply_to,
        )
        self._bus = bus
        self._delivery = delivery
        self._acks = acks
        #: Handled and settled, but the final ack did not reach the broker (its channel
        #: closed): the broker delivers the message again, which needs no handling.
        self.ack_lost = False

    async def _final_ack(self) -> None:
        """Ack once the work is done; note when only this ack failed (channel gone)."""
        try:
            if self._acks is not None:
                await self._acks.ack(self._delivery)
            else:
                await self._delivery.ack()
        except Exception:
            self.ack_lost = True
            raise

    async def _ack(self) -> None:
        await self._final_ack()

    async def _retry(self, delay: float) -> None:
        # Publish the copy first and ack after: a crash in between delivers it twice,
        # never zero times.
        headers = {
            **self._copied_headers(),
            RETRIES_HEADER: str(self.retries + 1),
            ORIGINAL_ROUTING_KEY_HEADER: self.routing_key,
        }
        names = self._bus.names
        await self._bus._publish(
            names.retry_exchange(delay),
            names.queue(self.queue),
            self._copy(headers),
        )
        await self._final_ack()

    async def _dead_letter(self, reason: str, error: str | None) -> None:
        await self._bus._publish_dead_letter(
            queue=self.queue,
            routing_key=self.routing_key,
            body=self.body,
            headers=self._copied_headers(),
            message_id=self.message_id,
            retries=self.retries,
            reason=reason,
            error=error,
            correlation_id=self.correlation_id,
        )
        await self._final_ack()

    async def _release(self) -> None:
        if self._acks is not None:
            await self._acks.alone(self._delivery, lambda: self._delivery.nack(requeue=True))
        else:
            await self._delivery.nack(requeue=True)

    async def _reply(self, reply: Envelope | bytes) -> None:
        assert self.reply_to is not None
        try:
            await self._bus._publish(
                "",
                self.reply_to,
                _outgoing(
                    reply, correlation_id=self.correlation_id, message_id=message_id_for(reply)
                ),
            )
        except Unroutable:
            # The requester's reply queue is gone (it stopped): keep the reply.
            await self._bus._publish_dead_letter(
                queue=LATE_REPLIES,
                routing_key=self.routing_key,
                body=to_body(reply),
                headers={},
                message_id=str(uuid.uuid4()),
                retries=0,
                reason=f"late reply: the requester's reply queue {self.reply_to} is gone",
                error=None,
                correlation_id=self.correlation_id,
                physical_queue=self.reply_to,
            )

    def _copied_headers(self) -> dict[str, str]:
        return {
            k: v
            for k, v in self.headers.items()
            if k not in (RETRIES_HEADER, ORIGINAL_ROUTING_KEY_HEADER)
            and not k.startswith(_BROKER_HEADERS)
        }

    def _copy(self, headers: Mapping[str, str]) -> aio_pika.Message:
        return aio_pika.Message(
            self.body,
            headers=dict(headers),
            content_type=self._delivery.content_type or CONTENT_TYPE,
            message_id=self.message_id,
            correlation_id=self.correlation_id,
            reply_to=self.reply_to,
            type=self._delivery.type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )


class _RabbitMQConsumer(Consumer):
    def __init__(self, bus: RabbitMQBus, spec: QueueSpec, handler: Handler, validate: bool):
        super().__init__(spec, handler, validate)
        self._bus = bus
        self._channel: aio_pika.abc.AbstractRobustChannel | None = None
        self._queue: aio_pika.abc.AbstractQueue | None = None
        self._tag: str | None = None
        # By (message id, retries): the handler task of each message handled now, and the
        # messages handled to the end whose ack was lost with the channel (most recent).
        self._handling: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._ack_lost: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._acks = AckCoalescer()

    async def start(self, prefetch: int) -> None:
        bus = self._bus
        channel = await bus._open_channel()
        # Ordered queues take one message at a time so that order holds.
        await channel.set_qos(prefetch_count=1 if self._spec.ordered else prefetch)
        self._channel = channel
        self._queue = await bus._declare_work_queue(channel, self._spec)
        self._tag = await self._queue.consume(self._on_delivery, no_ack=False)

    async def _on_delivery(self, delivery: aio_pika.abc.AbstractIncomingMessage) -> None:
        self._acks.opened(delivery)
        message = RabbitMQMessage(self._bus, delivery, self._spec, self._acks)
        key = (message.message_id, message.retries)
        earlier = self._handling.get(key)
        if message.redelivered and (earlier is not None or key in self._ack_lost):
            # The connection dropped while this message was handled here: the broker
            # hands it out again, maybe while its first handler still runs. Handling it
            # twice would call Hubject twice; wait for the first handler instead.
            task = asyncio.create_task(self._redelivered(message, key, earlier))
            self._inflight.add(task)
            task.add_done_callback(self._handled)
            return
        self._start_handling(message)

    async def _handle(self, message: IncomingMessage) -> None:
        key = (message.message_id, message.retries)
        task = asyncio.current_task()
        assert task is not None
        self._handling[key] = task
        try:
            await super()._handle(message)
        finally:
            if self._handling.get(key) is task:
                del self._handling[key]
            if isinstance(message, RabbitMQMessage) and message.ack_lost:
                self._ack_lost[key] = None
                while len(self._ack_lost) > ACK_LOST_MEMORY:
                    self._ack_lost.popitem(last=False)

    async def _redelivered(
        self, message: RabbitMQMessage, key: tuple[str, int], earlier: asyncio.Task[None] | None
    ) -> None:
        """A redelivery of a message handled here: ack it if that handling got to the end."""
        if earlier is not None:
            try:
                await asyncio.wait({earlier})
            except asyncio.CancelledError:
                async with message.process():  # stopping: hand the redelivery back
                    raise
        if key in self._ack_lost:
            del self._ack_lost[key]
            log.info("bus.redelivery_already_handled", queue=self._spec.name,
                     message_id=message.message_id)
            async with message.process():
                return
        await self._handle(message)

    async def cancel(self, grace: float = CLOSE_GRACE_SECONDS) -> None:
        """Stop deliveries; let handlers finish for ``grace`` seconds, then hand theirs back."""
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(*_CONNECTION_ERRORS, AMQPError, TimeoutError):
                await self._queue.cancel(self._tag)
        await self._drain(grace)
        if self._channel is not None:
            # Closing the channel returns whatever it still holds to the queue.
            with contextlib.suppress(*_CONNECTION_ERRORS, AMQPError):
                await self._channel.close()
        self._bus._consumers.discard(self)


class RabbitMQBus(Bus):
    """The bus on a RabbitMQ broker."""

    def __init__(
        self,
        config: RabbitMQConfig,
        *,
        retry_delays: Iterable[float] = (5.0, 30.0, 300.0),
        request_timeout: float = 8.0,
        queues: Iterable[QueueSpec] = (),
    ) -> None:
        super().__init__(
            retry_delays=tuple(retry_delays), request_timeout=request_timeout, queues=queues
        )
        self.config = config
        self.names = RabbitMQNames(config)
        #: This connector instance, as its reply queue's name shows.
        self.instance = uuid.uuid4().hex[:12]
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._channel: aio_pika.abc.AbstractRobustChannel | None = None
        self._exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
        # The arguments each queue was declared with (probed once per queue).
        self._queue_arguments: dict[str, dict[str, Any]] = {}
        self._retry_delays_declared: set[int] = set()
        self._consumers: set[_RabbitMQConsumer] = set()
        self._reply_queue: aio_pika.abc.AbstractQueue | None = None
        self._reply_tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def from_config(cls, config: BusConfig, *, queues: Iterable[QueueSpec] = ()) -> RabbitMQBus:
        """The RabbitMQ bus described by the ``[bus]`` section, declaring ``queues``."""
        return cls(
            config.rabbitmq,
            retry_delays=config.retry_delays_seconds,
            request_timeout=config.request_timeout_seconds,
            queues=queues,
        )

    @property
    def is_connected(self) -> bool:
        """Whether the connection to the broker is up now."""
        connection = self._connection
        return (
            connection is not None
            and not connection.is_closed
            and bool(getattr(connection, "connected", None) and connection.connected.is_set())
        )

    def _url(self) -> str:
        url = URL(self.config.url)
        if self.config.password_file is not None:
            try:
                password = self.config.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise BusError(f"cannot read bus.rabbitmq.password_file: {exc}") from exc
            url = url.with_password(password)
        return str(url)

    async def connect(self) -> None:
        """Connect, open the publishing channel, declare the shared topology."""
        if self._connection is not None:
            return
        try:
            connection = await aio_pika.connect_robust(
                self._url(),
                reconnect_interval=self.config.reconnect_interval_seconds,
                client_properties={"connection_name": self.config.connection_name},
            )
        except (AMQPError, OSError, TimeoutError) as exc:
            raise BusError(
                f"cannot connect to RabbitMQ at {_redacted(self.config.url)}: {exc!r}"
            ) from exc
        self._connection = connection
        try:
            self._channel = await self._open_channel(publisher_confirms=True)
            await self._declare_topology(self._channel)
            for spec in backend_queues():
                await self._declare_backend_queue(self._channel, spec)
            # The connector's own queues, before any consumer: what a backend publishes
            # from now on waits in its queue instead of being returned as unroutable.
            for spec in self.queues:
                await self._declare_work_queue(self._channel, spec)
            reply_channel = await self._open_channel()
            await reply_channel.set_qos(prefetch_count=self.config.prefetch)
            self._reply_queue = await reply_channel.declare_queue(
                self.names.reply_queue(self.instance), exclusive=True, auto_delete=True
            )
            await self._reply_queue.consume(self._on_reply, no_ack=False)
        except BaseException:
            await connection.close()
            self._connection = None
            raise
        log.info("bus.connected", kind="rabbitmq", url=_redacted(self.config.url))

    async def _open_channel(
        self, *, publisher_confirms: bool = True
    ) -> aio_pika.abc.AbstractRobustChannel:
        if self._connection is None:
            raise NotConnected("connect() the bus first")
        channel = await self._connection.channel(
            publisher_confirms=publisher_confirms, on_return_raises=publisher_confirms
        )
        assert isinstance(channel, aio_pika.abc.AbstractRobustChannel)
        return channel

    async def _declare_topology(self, channel: aio_pika.abc.AbstractRobustChannel) -> None:
        names = self.names
        self._exchanges[names.exchange] = await channel.declare_exchange(
            names.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        self._exchanges[names.dead_letter_exchange] = await channel.declare_exchange(
            names.dead_letter_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        dead_letters = await channel.declare_queue(names.dead_letter_queue, durable=True)
        await dead_letters.bind(names.dead_letter_exchange, routing_key="#")
        self._exchanges[""] = channel.default_exchange
        for delay in self._all_retry_delays():
            await self._declare_retry_queue(delay)

    async def _declare_retry_queue(self, delay: float) -> None:
        """The retry exchange and queue of ``delay`` (once per delay and connection).

        On the publishing channel, which retries are published through: robust, so both
        are declared again after a reconnection.
        """
        if _ms(delay) in self._retry_delays_declared:
            return
        channel = self._channel
        if channel is None:
            raise NotConnected("connect() the bus first")
        names = self.names
        exchange = await channel.declare_exchange(
            names.retry_exchange(delay), aio_pika.ExchangeType.FANOUT, durable=True
        )
        self._exchanges[exchange.name] = exchange
        physical = names.retry_queue(delay)
        classic: dict[str, Any] = {
            "x-message-ttl": _ms(delay),
            # The default exchange routes by queue name: the routing key the message was
            # published with here, the work queue's name.
            "x-dead-letter-exchange": "",
        }
        arguments = await self._queue_arguments_for(physical, _candidates(classic, self.config))
        retry_queue = await channel.declare_queue(physical, durable=True, arguments=arguments)
        await retry_queue.bind(exchange, routing_key="")
        self._retry_delays_declared.add(_ms(delay))

    async def _queue_arguments_for(
        self, physical: str, candidates: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The first of ``candidates`` the broker takes for ``physical`` (probed once).

        Newest arguments first: a broker too old for them, or a queue an older version
        declared with other arguments, refuses with PRECONDITION_FAILED, and the next set is
        tried; the queue keeps the arguments it has.
        """
        known = self._queue_arguments.get(physical)
        if known is not None:
            return known
        last: Exception | None = None
        for arguments in candidates:
            # A refused declaration closes its channel: probe on a throwaway one.
            probe = await self._open_channel(publisher_confirms=False)
            try:
                await probe.declare_queue(
                    physical, durable=True, arguments=arguments, robust=False
                )
            except (ChannelClosed, aiormq.exceptions.ChannelPreconditionFailed) as exc:
                log.info(
                    "bus.queue_arguments_refused",
                    queue=physical,
                    type=arguments.get("x-queue-type"),
                    error=str(exc),
                )
                last = exc
                continue
            finally:
                with contextlib.suppress(*_CONNECTION_ERRORS, AMQPError):
                    await probe.close()
            if arguments is not candidates[0]:
                log.info("bus.queue_kept_as_declared", queue=physical, arguments=arguments)
            self._queue_arguments[physical] = arguments
            return arguments
        raise BusError(
            f"RabbitMQ refused to declare queue {physical!r} (it exists with other"
            f" arguments?): {last}"
        )

    async def _declare_work_queue(
        self, channel: aio_pika.abc.AbstractRobustChannel, spec: QueueSpec
    ) -> aio_pika.abc.AbstractQueue:
        for delay in spec.delays(self.retry_delays):
            await self._declare_retry_queue(delay)
        physical = self.names.queue(spec.name)
        classic: dict[str, Any] = {"x-dead-letter-exchange": self.names.dead_letter_exchange}
        if spec.ordered:
            classic["x-single-active-consumer"] = True
        candidates = _candidates(classic, self.config, delivery_limit=True)
        arguments = await self._queue_arguments_for(physical, candidates)
        # Declared on a robust channel, so it is declared and bound again on reconnect.
        queue = await channel.declare_queue(physical, durable=True, arguments=arguments)
        await self._bind(queue, spec)
        return queue

    async def _bind(self, queue: aio_pika.abc.AbstractQueue, spec: QueueSpec) -> None:
        for pattern in spec.patterns:
            await queue.bind(self.names.exchange, routing_key=pattern)

    async def _declare_backend_queue(
        self, channel: aio_pika.abc.AbstractRobustChannel, spec: QueueSpec
    ) -> None:
        try:
            await self._declare_work_queue(channel, spec)
        except BusError as exc:
            # The backend declared it first, with other arguments: its queue, its choice.
            # Binding it is enough for nothing to be lost.
            log.info("bus.backend_queue_kept", queue=spec.name, error=str(exc))
            queue = await channel.declare_queue(self.names.queue(spec.name), passive=True)
            await self._bind(queue, spec)

    async def close(self) -> None:
        """Stop consumers (handlers finish), fail waiting requests, close the connection."""
        if self._connection is None:
            return
        for consumer in list(self._consumers):
            await consumer.cancel()
        self._pending.fail_all(NotConnected("the bus was closed while waiting for a reply"))
        if self._reply_tasks:
            await asyncio.wait(set(self._reply_tasks))
        connection, self._connection = self._connection, None
        self._channel = None
        self._exchanges.clear()
        self._retry_delays_declared.clear()
        self._queue_arguments.clear()
        with contextlib.suppress(*_CONNECTION_ERRORS, AMQPError):
            await connection.close()

    async def declare(self, queue: QueueSpec | str) -> None:
        """Declare the work queue, its bindings and the retry queues of its delays."""
        spec = self._spec(queue)
        self._remember(spec)
        channel = await self._open_channel(publisher_confirms=False)
        try:
            await self._declare_work_queue(channel, spec)
        finally:
            await channel.close()

    async def _publish(
        self, exchange_name: str, routing_key: str, message: aio_pika.Message
    ) -> None:
        """Publish and wait for the confirm; across one reconnection if the link drops."""
        if self._connection is None or self._channel is None:
            raise NotConnected("connect() the bus first")
        deadline = time.monotonic() + PUBLISH_TIMEOUT_SECONDS
        while True:
            exchange = self._exchanges.get(exchange_name)
            if exchange is None:
                exchange = await self._channel.get_exchange(exchange_name, ensure=False)
                self._exchanges[exchange_name] = exchange
            remaining = deadline - time.monotonic()
            try:
                await exchange.publish(
                    message, routing_key, mandatory=True, timeout=max(0.1, remaining)
                )
                return
            except PublishError as exc:
                raise Unroutable(routing_key) from exc
            except DeliveryError as exc:
                raise BusError(f"RabbitMQ refused the message: {exc!r}") from exc
            except (*_CONNECTION_ERRORS, TimeoutError) as exc:
                # Not sent, or sent with the confirm lost: send again once the robust
                # connection is back (a consumer may then see it twice, never zero times).
                if time.monotonic() >= deadline:
                    raise BusError(f"publishing to RabbitMQ failed: {exc!r}") from exc
                log.warning("bus.publish_waiting_for_reconnect", error=repr(exc))
                await self._wait_for_channel(deadline)

    async def _wait_for_channel(self, deadline: float) -> None:
        assert self._connection is not None
        assert self._channel is not None
        await asyncio.sleep(0.05)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await self._connection.connected.wait()
                await self._channel.ready()
        except TimeoutError:
            return

    async def _publish_dead_letter(
        self,
        *,
        queue: str,
        routing_key: str,
        body: bytes,
        headers: Mapping[str, str],
        message_id: str,
        retries: int,
        reason: str,
        error: str | None,
        correlation_id: str | None = None,
        physical_queue: str | None = None,
    ) -> None:
        """Publish a dead letter of ``queue`` (the work queue's own name, or LATE_REPLIES).

        It is routed with ``queue``, which ``dlq`` reads back; ``x-original-queue`` is the
        broker's name of the queue it was taken from (``physical_queue`` when that is not
        the work queue ``queue``: a reply queue).
        """
        dead_headers = {
            **headers,
            REASON_HEADER: reason,
            ORIGINAL_QUEUE_HEADER: physical_queue or self.names.queue(queue),
            ORIGINAL_ROUTING_KEY_HEADER: routing_key,
            ORIGINAL_MESSAGE_ID_HEADER: message_id,
            RETRIES_HEADER: str(retries),
            DEAD_LETTERED_AT_HEADER: datetime.now(UTC).isoformat(),
        }
        if error:
            dead_headers[ERROR_HEADER] = error
        await self._publish(
            self.names.dead_letter_exchange,
            queue,
            aio_pika.Message(
                body,
                headers=dict[str, Any](dead_headers),
                message_id=str(uuid.uuid4()),
                correlation_id=correlation_id,
                content_type=CONTENT_TYPE,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
        )

    async def publish(
        self,
        routing_key: str,
        message: Envelope | bytes,
        *,
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
    ) -> str:
        """Publish to the topic exchange and wait for the broker's confirm."""
        message_id = message_id or message_id_for(message)
        await self._publish(
            self.names.exchange,
            routing_key,
            _outgoing(message, headers=dict(headers or {}), message_id=message_id),
        )
        return message_id

    async def consume(
        self,
        queue: QueueSpec | str,
        handler: Handler,
        *,
        prefetch: int | None = None,
        validate: bool = True,
    ) -> Consumer:
        """Declare the queue and consume it on a channel of its own."""
        spec = self._spec(queue)
        self._remember(spec)
        consumer = _RabbitMQConsumer(self, spec, handler, validate)
        await consumer.start(prefetch or spec.prefetch or self.config.prefetch)
        self._consumers.add(consumer)
        return consumer

    async def request(
        self,
        routing_key: str,
        message: Envelope | bytes,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the deadline also goes with the message
    ) -> Envelope:
        """Publish with reply_to and correlation_id; wait for the reply until the deadline."""
        if self._reply_queue is None:
            raise NotConnected("connect() the bus before sending requests")
        timeout = self.request_timeout if timeout is None else timeout
        correlation_id = correlation_id_for(message)
        outgoing = _outgoing(
            message,
            headers={DEADLINE_HEADER: f"{time.time() + timeout:.3f}"},
            message_id=message_id_for(message),
            correlation_id=correlation_id,
            reply_to=self._reply_queue.name,
            # Nobody acts on a command after its asker gave up: the broker
            # dead-letters it ("expired") instead of delivering it.
            expiration=timeout,
        )
        body = await self._send_and_wait(
            routing_key,
            correlation_id,
            timeout,
            lambda: self._publish(self.names.exchange, routing_key, outgoing),
        )
        return parse_reply(message, body)

    async def _on_reply(self, delivery: aio_pika.abc.AbstractIncomingMessage) -> None:
        task = asyncio.create_task(self._take_reply(delivery))
        self._reply_tasks.add(task)
        task.add_done_callback(self._reply_tasks.discard)

    async def _take_reply(self, delivery: aio_pika.abc.AbstractIncomingMessage) -> None:
        try:
            late = None
            if not self._pending.resolve(delivery.correlation_id, delivery.body):
                late = self._late_reply(delivery.correlation_id, delivery.body, "")
                await self._publish_dead_letter(
                    queue=LATE_REPLIES,
                    routing_key=late.routing_key,
                    body=delivery.body,
                    headers=clean_headers(delivery.headers or {}),
                    message_id=delivery.message_id or str(uuid.uuid4()),
                    retries=0,
                    reason=late.reason,
                    error=None,
                    correlation_id=delivery.correlation_id,
                    physical_queue=self._reply_queue.name if self._reply_queue else None,
                )
            await delivery.ack()
            if late is not None:
                await self._report_late_reply(late)
        except (*_CONNECTION_ERRORS, AMQPError, BusError) as exc:
            log.warning("bus.reply_handling_failed", error=repr(exc))

    # Dead letters: read by getting messages from the dead-letter queue without acking
    # them; closing the channel puts back every one not acked.

    async def _scan_dead_letters(
        self,
        act: Callable[[aio_pika.abc.AbstractIncomingMessage], Awaitable[bool]] | None = None,
        *,
        limit: int | None = None,
    ) -> list[DeadLetter]:
        channel = await self._open_channel(publisher_confirms=False)
        letters: list[DeadLetter] = []
        try:
            queue = await channel.declare_queue(
                self.names.dead_letter_queue, passive=True, robust=False
            )
            while limit is None or len(letters) < limit:
                delivery = await queue.get(no_ack=False, fail=False)
                if delivery is None:
                    break
                letters.append(self._dead_letter_from(delivery))
                if act is not None and await act(delivery):
                    break
        finally:
            with contextlib.suppress(*_CONNECTION_ERRORS, AMQPError):
                await channel.close()
        return letters

    def _dead_letter_from(self, delivery: aio_pika.abc.AbstractIncomingMessage) -> DeadLetter:
        raw = delivery.headers or {}
        headers = clean_headers(raw)
        reason = headers.get(REASON_HEADER)
        original_key = headers.get(ORIGINAL_ROUTING_KEY_HEADER)
        routing_key = original_key or delivery.routing_key or ""
        # The connector routes a dead letter with the work queue's own name (or
        # LATE_REPLIES); x-original-queue is the broker's name.
        queue = delivery.routing_key or self.names.logical(
            headers.get(ORIGINAL_QUEUE_HEADER, "")
        )
        deaths = raw.get("x-death")
        if reason is None and isinstance(deaths, list) and deaths:
            # Dead-lettered by the broker itself (an expired request, a delivery limit),
            # with the routing key it had: the queue is in its x-death record.
            death = deaths[0] if isinstance(deaths[0], dict) else {}
            broker_reason = _text(death.get("reason")) or "dead-lettered by the broker"
            queue = self.names.logical(_text(death.get("queue")) or "")
            keys = death.get("routing-keys")
            if original_key is None and isinstance(keys, list) and keys:
                routing_key = _text(keys[0]) or routing_key
            reason = f"{broker_reason} (by the broker)"
        at = headers.get(DEAD_LETTERED_AT_HEADER)
        try:
            retries = int(headers.get(RETRIES_HEADER, "0"))
        except ValueError:
            retries = 0
        return DeadLetter(
            id=delivery.message_id or "",
            queue=queue or "",
            routing_key=routing_key,
            reason=reason or "unknown",
            error=headers.get(ERROR_HEADER),
            body=delivery.body,
            headers={k: v for k, v in headers.items() if k not in DEAD_LETTER_HEADERS},
            message_id=headers.get(ORIGINAL_MESSAGE_ID_HEADER, delivery.message_id or ""),
            retries=retries,
            dead_lettered_at=datetime.fromisoformat(at) if at else None,
        )

    async def list_dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters (they stay in the queue)."""
        return await self._scan_dead_letters(limit=limit)

    async def dead_letter_count(self) -> int:
        """The ready messages of the dead-letter queue, from a passive declare (the
        broker's count; letters a ``dlq list`` holds unacked at that moment are not in it)."""
        channel = await self._open_channel(publisher_confirms=False)
        try:
            queue = await channel.declare_queue(
                self.names.dead_letter_queue, passive=True, robust=False
            )
            return int(queue.declaration_result.message_count or 0)
        finally:
            with contextlib.suppress(*_CONNECTION_ERRORS, AMQPError):
                await channel.close()

    async def _take_dead_letter(
        self,
        dead_letter_id: str,
        then: Callable[[DeadLetter], Awaitable[None]],
    ) -> DeadLetter:
        found: list[DeadLetter] = []

        async def act(delivery: aio_pika.abc.AbstractIncomingMessage) -> bool:
            if delivery.message_id != dead_letter_id:
                return False
            letter = self._dead_letter_from(delivery)
            await then(letter)
            await delivery.ack()
            found.append(letter)
            return True

        await self._scan_dead_letters(act)
        if not found:
            raise DeadLetterNotFound(dead_letter_id)
        return found[0]

    async def replay_dead_letter(self, dead_letter_id: str, *, body: bytes | None = None) -> str:
        """Publish the dead letter to its work queue again (retries reset), then drop it."""

        async def republish(letter: DeadLetter) -> None:
            if not letter.queue or letter.queue == LATE_REPLIES:
                raise BusError(
                    f"dead letter {dead_letter_id} did not come from a work queue"
                    f" ({letter.queue or 'unknown'}); publish its body again instead"
                )
            await self._publish(
                "",
                self.names.queue(letter.queue),
                aio_pika.Message(
                    letter.body if body is None else body,
                    # Routed by the queue's name: the header keeps the original key.
                    headers={
                        **letter.headers,
                        ORIGINAL_ROUTING_KEY_HEADER: letter.routing_key,
                    },
                    message_id=letter.message_id,
                    content_type=CONTENT_TYPE,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
            )

        letter = await self._take_dead_letter(dead_letter_id, republish)
        return letter.message_id

    async def delete_dead_letter(self, dead_letter_id: str) -> None:
        """Remove one dead letter."""

        async def drop(_letter: DeadLetter) -> None:
            return None

        await self._take_dead_letter(dead_letter_id, drop)


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _outgoing(message: Envelope | bytes, **properties: Any) -> aio_pika.Message:
    """An AMQP message as the contract has it: persistent, typed, CloudEvents JSON."""
    return aio_pika.Message(
        to_body(message),
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        type=None if isinstance(message, bytes) else str(message.type),
        **properties,
    )
