"""The remote-command round trip: Hubject's request to the backend and its reply back.

What passes through: a decoded remote start/stop or reservation start/stop. It goes to the
backend as a command envelope (docs/contract.md) with a ``deadline`` of the request's
arrival plus ``inbound.reply_deadline_seconds``, through ``Bus.request``; what comes back
is the eRoamingAcknowledgement for Hubject, typed (``oicp.common.Acknowledgement``).

The answer is always given by the deadline. Without a valid reply by then (none came, it
broke the contract, it was of another type, or the bus failed) Hubject gets ``Result``
false with ``inbound.timeout_status_code``, counted in
``hubject_connector_inbound_command_timeouts_total``. Nothing the backend sends is lost
silently: a reply that arrives after the deadline is kept as a dead letter by the bus,
which calls :meth:`Commands.report_late_reply`; the backend then gets a ``dropped``
delivery result for it. An invalid reply gets a ``rejected`` delivery result with 022 and
the contract error.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog

from hubject_connector.bus.base import Bus, LateReply, RequestTimeout
from hubject_connector.bus.contract import (
    ContractError,
    Envelope,
    MessageType,
    Outcome,
    make_delivery_result,
    make_envelope,
)
from hubject_connector.config import InboundConfig
from hubject_connector.errors import BusError, ConnectorError
from hubject_connector.inbound.metrics import InboundMetrics
from hubject_connector.oicp.common import Acknowledgement
from hubject_connector.translate import inbound as translate
from hubject_connector.translate.errors import TranslationError
from hubject_connector.translate.inbound import RemoteRequest

log = structlog.get_logger(__name__)

#: How many unanswered commands are remembered, to word the report of a late reply.
_REMEMBERED: Final = 10_000
#: How long an unanswered command is remembered (a late reply after it is still reported).
_REMEMBER_SECONDS: Final = 3600.0
#: The delivery result's ``reason`` is at most this long (contract schema).
_REASON_MAX: Final = 2000


@dataclass(frozen=True, slots=True)
class _Unanswered:
    """What Hubject was told for a command the backend did not answer in time."""

    operation: str
    status_code: str
    at: float


class Commands:
    """Sends each remote request to the backend as a command; turns its reply into the answer."""

    def __init__(
        self,
        bus: Bus,
        config: InboundConfig,
        metrics: InboundMetrics,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._bus = bus
        self._config = config
        self._metrics = metrics
        self._now = now
        self._unanswered: OrderedDict[str, _Unanswered] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    async def answer(
        self, operation: str, request: RemoteRequest, *, received: datetime, deadline: float
    ) -> Acknowledgement:
        """The acknowledgement for ``request``, given by ``deadline`` (``loop.time()``).

        ``received`` is when Hubject's request arrived (wall clock, with offset); the
        command's ``deadline`` is that plus ``reply_deadline_seconds``.
        """
        message_type = translate.command_type(request)
        try:
            command = make_envelope(
                message_type,
                translate.command_data(request),
                subject=translate.command_subject(request),
                deadline=received + timedelta(seconds=self._config.reply_deadline_seconds),
            )
        except (ContractError, TranslationError) as exc:
            # Valid OICP that the contract still refuses (a rule of the contract stricter
            # than Hubject's): the request cannot be passed on as it is.
            log.warning("inbound.untranslatable_request", operation=operation, error=str(exc))
            return translate.data_error(
                [f"cannot be passed to the backend: {exc}"], session_id=request.session_id
            )

        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        reason: str
        detail: str
        try:
            if remaining <= 0:
                raise RequestTimeout(str(message_type), 0.0, command.id)
            reply = await self._bus.request(str(message_type), command, timeout=remaining)
            return self._acknowledgement(command, reply, request)
        except RequestTimeout:
            reason, detail = "no_reply", "the backend did not answer before the deadline"
        except ContractError as exc:
            reason, detail = "invalid_reply", "the backend's reply breaks the contract"
            self._spawn(self._report_invalid_reply(command, exc))
        except _WrongReply as exc:
            reason, detail = "invalid_reply", "the backend's reply is not valid"
            self._spawn(self._report_invalid_reply(command, exc, reply_id=exc.reply_id))
        except BusError as exc:
            reason, detail = "bus_error", "the backend could not be reached"
            log.error("inbound.bus_failed", operation=operation, command_id=command.id,
                      error=str(exc))
        code = self._config.timeout_status_code
        self._metrics.unanswered.labels(operation=operation, reason=reason).inc()
        self._remember(command.id, _Unanswered(operation, code, time.monotonic()))
        log.warning("inbound.answered_without_backend", operation=operation,
                    command_id=command.id, reason=reason, status_code=code,
                    session_id=request.session_id, evse_id=request.evse_id)
        return translate.refusal(code, detail, request=request)

    def _acknowledgement(
        self, command: Envelope, reply: Envelope, request: RemoteRequest
    ) -> Acknowledgement:
        expected = command.spec.reply_type
        if reply.type is not expected:
            raise _WrongReply(
                reply.id,
                f"/type: must be {expected} to answer a {command.type}, not {reply.type}",
            )
        try:
            return translate.acknowledgement(reply.data, request)
        except TranslationError as exc:
            raise _WrongReply(reply.id, str(exc)) from exc

    async def report_late_reply(self, late: LateReply) -> None:
        """Tell the backend its reply came too late: a ``dropped`` delivery result.

        Meant as the bus's ``on_late_reply``: the bus has already kept the reply as a dead
        letter and logged it.
        """
        unanswered = self._unanswered.pop(late.correlation_id or "", None)
        operation = unanswered.operation if unanswered else _operation_of(late.routing_key)
        self._metrics.late_replies.labels(operation=operation).inc()
        reply = _lenient_json(late.body)
        reply_id = reply.get("id")
        answered = (
            f"Hubject was answered {unanswered.status_code} at the deadline"
            if unanswered is not None else "Hubject was answered without it"
        )
        log.warning("inbound.late_reply", operation=operation,
                    correlation_id=late.correlation_id, reply_id=reply_id, reason=late.reason)
        if not isinstance(reply_id, str) or not reply_id:
            log.error("inbound.late_reply_unreported",
                      reason="the late reply has no id to report it by",
                      correlation_id=late.correlation_id)
            return
        await self._publish_result(
            reply_id,
            Outcome.DROPPED,
            reply,
            reason=f"the reply came after the command's deadline: {answered}; {late.reason}",
        )

    async def _report_invalid_reply(
        self, command: Envelope, error: Exception, *, reply_id: str | None = None
    ) -> None:
        if reply_id is None and isinstance(error, ContractError):
            reply_id = error.message_id
        code = self._config.timeout_status_code
        log.warning("inbound.invalid_reply", command_id=command.id, reply_id=reply_id,
                    error=str(error))
        if not reply_id:
            return
        await self._publish_result(
            reply_id,
            Outcome.REJECTED,
            {"subject": command.subject},
            status_code="022",
            reason=f"the reply to command {command.id} was not used: {error}; Hubject was "
                   f"answered {code}",
        )

    async def _publish_result(
        self,
        reply_id: str,
        outcome: Outcome,
        reply: dict[str, Any],
        *,
        reason: str,
        status_code: str | None = None,
    ) -> None:
        message_type = reply.get("type")
        subject = reply.get("subject")
        try:
            result = make_delivery_result(
                reply_id[:200],
                outcome,
                message_type=message_type if isinstance(message_type, str) and message_type
                else None,
                subject=subject if isinstance(subject, str) and subject else None,
                status_code=status_code,
                reason=reason[:_REASON_MAX],
            )
            await self._bus.publish(str(MessageType.DELIVERY_RESULT), result)
        except (ContractError, BusError) as exc:
            log.error("inbound.delivery_result_failed", reply_id=reply_id,
                      outcome=str(outcome), error=str(exc))

    def _remember(self, command_id: str, unanswered: _Unanswered) -> None:
        self._unanswered[command_id] = unanswered
        while len(self._unanswered) > _REMEMBERED:
            self._unanswered.popitem(last=False)
        while self._unanswered:
            oldest = next(iter(self._unanswered.values()))
            if unanswered.at - oldest.at <= _REMEMBER_SECONDS:
                break
            self._unanswered.popitem(last=False)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a grace period
        """Let reports in progress finish for ``timeout`` seconds, then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)


class _WrongReply(ConnectorError):
    """A reply that parsed but cannot answer this command (wrong type, unusable data)."""

    def __init__(self, reply_id: str, message: str) -> None:
        super().__init__(message)
        self.reply_id = reply_id


def _operation_of(routing_key: str) -> str:
    # The command type names the operation when the command itself is forgotten.
    names = {
        str(MessageType.REMOTE_START_COMMAND): "AuthorizeRemoteStart",
        str(MessageType.REMOTE_STOP_COMMAND): "AuthorizeRemoteStop",
        str(MessageType.RESERVATION_START_COMMAND): "AuthorizeRemoteReservationStart",
        str(MessageType.RESERVATION_STOP_COMMAND): "AuthorizeRemoteReservationStop",
    }
    return names.get(routing_key, "unknown")


def _lenient_json(body: bytes) -> dict[str, Any]:
    """The reply as a JSON object, or an empty one when it is not (it is reported anyway)."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
