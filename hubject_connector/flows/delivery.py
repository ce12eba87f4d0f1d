"""What every flow shares: its parts, and the one path from a bus message to its result.

A flow takes messages from its queue (``Flow.handler`` wraps ``Flow.handle`` for the
bus), translates them to OICP, checks the OICP context (``oicp.context.ensure_context``),
calls Hubject and says what became of the message as a :class:`~.results.Verdict`.
:class:`DeliveryHandler` turns whatever happened into exactly one delivery result and
the bus's acknowledge decision (bus/base.py, ``IncomingMessage.process``):

* ``handle`` returns a verdict: it is published and the message acknowledged (``None``:
  the flow publishes later itself, e.g. a status once pushed);
* the message breaks the bus contract, or its data cannot become a valid OICP message
  (``TranslationError``, a context ``OicpValidationError``): result ``rejected`` with 022
  and the reasons (``dead_lettered`` for a contract error), then dead-lettered;
* :class:`DeliveryRefused`: the flow's own verdict is published, then the message is
  dead-lettered (a CDR Hubject refused for good must not be lost);
* a transient failure (no answer from Hubject, a transient status code, the state store
  or the bus for a moment unavailable): retried after the queue's next retry delay;
  once the delays are used up, result ``dead_lettered`` and dead-lettered;
* anything else: result ``dead_lettered`` with the error, and dead-lettered.

Messages are parsed here rather than by the bus (``validate=False``), so that a message
breaking the contract still gets its ``dead_lettered`` result when its id can be read.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import structlog

from hubject_connector.bus.base import (
    Bus,
    DeadLetterOutcome,
    Handler,
    IncomingMessage,
    QueueSpec,
    Reply,
    disposition,
)
from hubject_connector.bus.contract import ContractError, Envelope
from hubject_connector.config import Config
from hubject_connector.errors import ConnectorError
from hubject_connector.flows.metrics import FlowMetrics
from hubject_connector.flows.results import Origin, Results, Verdict
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.hubject.errors import InvalidAnswerError, OicpStatusError
from hubject_connector.oicp.codec import OicpValidationError
from hubject_connector.oicp.context import ensure_context
from hubject_connector.state.base import StateStore
from hubject_connector.translate.errors import TranslationError
from hubject_connector.translate.outbound import Context

_log = structlog.get_logger(__name__)


class DeliveryRefused(ConnectorError):
    """The message is refused for good and must be kept: publish ``verdict``, dead-letter.

    The text is the dead letter's reason (``DeliveryRefused: <text>``).
    """

    transient = False

    def __init__(self, message: str, verdict: Verdict) -> None:
        super().__init__(message)
        self.verdict = verdict


@dataclass(frozen=True, slots=True)
class FlowParts:
    """What a flow works with, shared by every flow of one ``Flows``."""

    config: Config
    bus: Bus
    client: HubjectClient
    store: StateStore
    results: Results
    metrics: FlowMetrics
    context: Context


def attempts_of(message: IncomingMessage) -> int:
    """Calls to Hubject made for ``message`` so far, this one included (one per delivery)."""
    return message.retries + 1


def refusal_reason(exc: OicpStatusError, what: str) -> str:
    """Words for a permanent refusal by Hubject: ``what``, the code and its meaning."""
    text = (exc.description or "").rstrip(".")
    info = f": {exc.additional_info}" if exc.additional_info else ""
    return f"Hubject refused the {what} for good with status {exc.code} {text}{info}".strip()


def connector_refusal(exc: TranslationError | OicpValidationError, what: str) -> str:
    """Words for data the connector cannot send: every issue, with its pointer."""
    if isinstance(exc, TranslationError):
        issues = "; ".join(str(issue) for issue in exc.issues)
    else:
        issues = "; ".join(f"OICP {issue}" for issue in exc.issues)
    return f"the {what} cannot be sent to Hubject: {issues or exc}"


class Flow(abc.ABC):
    """One use case: a queue's messages to Hubject, and a result for each."""

    #: The logical name of the queue it consumes; also its ``flow`` metric label.
    name: ClassVar[str]
    #: What the message is, in results' reasons ("CDR", "EVSE data", ...).
    what: ClassVar[str]

    def __init__(self, parts: FlowParts) -> None:
        self.parts = parts

    @property
    def context(self) -> Context:
        """The operator configuration the translation uses."""
        return self.parts.context

    @property
    def healthy(self) -> bool:
        """Whether its background work (if any) still runs. Default: no such work."""
        return True

    def handler(self, spec: QueueSpec) -> Handler:
        """The bus handler of this flow's queue ``spec``."""
        return DeliveryHandler(self, spec)

    async def start(self) -> None:  # noqa: B027 - most flows have no background work
        """Start background work (before the consumers are registered). Default: none."""

    async def stop(self, grace: float) -> None:  # noqa: B027 - see start()
        """Stop background work within ``grace`` seconds. Default: nothing to stop."""

    @abc.abstractmethod
    async def handle(self, message: IncomingMessage, envelope: Envelope) -> Verdict | None:
        """Deliver one message; the verdict to publish, or None when published later."""

    def check(self, operation: str, request: object, operator_id: str, *,
              calibration_law: Mapping[str, str] | None = None) -> None:
        """Refuse a request Hubject would refuse by context before sending it.

        The OperatorID and every EvseID must be the sender's (017/018), times must not lie
        in the future (a CDR's SessionEnd), and a CDR of an EVSE whose calibration law data
        is External needs signed meter values (``calibration_law``: EvseID → as pushed).
        Raises ``OicpValidationError``.
        """
        ensure_context(operation, request, operator_id=operator_id,
                       sub_operator_ids=self.context.sub_operator_ids,
                       now=datetime.now(UTC), calibration_law=calibration_law)

    async def call(self, operation: str, request: object, operator_id: str) -> Any:
        """Check the context, then call Hubject (``HubjectClient.call``)."""
        self.check(operation, request, operator_id)
        return await self.parts.client.call(operation, request, operator_id=operator_id)

    async def publish(self, origin: Origin, verdict: Verdict) -> None:
        """Publish ``verdict`` about ``origin`` as this flow's result."""
        await self.parts.results.publish(self.name, origin, verdict)


class DeliveryHandler:
    """The bus handler of one flow's queue: one result per message (module doc)."""

    def __init__(self, flow: Flow, spec: QueueSpec) -> None:
        self.flow = flow
        self.spec = spec

    @property
    def retry_delays(self) -> tuple[float, ...]:
        """The retry delays the bus applies to this queue."""
        return self.spec.delays(self.flow.parts.bus.retry_delays)

    async def __call__(self, message: IncomingMessage) -> Reply:
        flow = self.flow
        flow.parts.metrics.consumed.labels(flow.name).inc()
        try:
            envelope = message.envelope
        except ContractError as exc:
            if exc.message_id:
                origin = Origin(exc.message_id, exc.message_type)
                await flow.publish(origin, Verdict.dead_lettered(
                    f"the message breaks the bus contract: {exc}"))
            else:
                flow.parts.results.count(flow.name, Verdict.dead_lettered("").outcome)
            raise
        origin = Origin.of(envelope)
        try:
            verdict = await flow.handle(message, envelope)
        except InvalidAnswerError as exc:
            await self._failed(message, origin, exc)
            raise
        except (TranslationError, OicpValidationError) as exc:
            await flow.publish(origin, Verdict.refused_by_connector(
                connector_refusal(exc, flow.what)))
            raise
        except DeliveryRefused as exc:
            await flow.publish(origin, exc.verdict)
            raise
        except Exception as exc:
            await self._failed(message, origin, exc)
            raise
        if verdict is not None:
            await flow.publish(origin, verdict)
        return None

    async def _failed(self, message: IncomingMessage, origin: Origin, exc: Exception) -> None:
        """Count a retry, or publish the dead-lettered result the bus's decision means."""
        flow = self.flow
        outcome = disposition(exc, message.retries, self.retry_delays)
        if isinstance(outcome, DeadLetterOutcome):
            # A Hubject error says a call was made on this delivery (one per delivery).
            called = isinstance(getattr(exc, "attempts", None), int)
            await flow.publish(origin, Verdict.dead_lettered(
                outcome.reason, attempts=attempts_of(message) if called else None))
            return
        flow.parts.metrics.retried.labels(flow.name).inc()
        _log.info("flows.retry", flow=flow.name, message_id=origin.message_id,
                  retry=message.retries + 1, delay_seconds=outcome.delay, reason=outcome.reason)
