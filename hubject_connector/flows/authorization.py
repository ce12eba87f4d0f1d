"""AuthorizeStart and AuthorizeStop: the backend asks, Hubject decides, the backend hears.

What passes through: ``authorization.start.request.v1`` and ``.stop.request.v1`` from the
``authorization`` queue, served request/reply (``Bus.serve``): each becomes one call to
Hubject, and its answer the reply (``authorization.start.reply.v1`` / ``.stop.reply.v1``,
``correlationid`` = the request's id) with Authorized or NotAuthorized, the SessionID,
ProviderID, status code and AuthorizationStopIdentifications.

Every request that is handled gets a reply, never a retry and never a dead letter, since
somebody is waiting for it:

* Hubject's answer (Authorized, or NotAuthorized with its authentication code) is the reply;
* Hubject's error status (017, 022, 021 after the client's retries, ...) becomes
  NotAuthorized with that status code and Hubject's texts;
* no usable answer (connection, timeout, HTTP error) becomes NotAuthorized with 320
  ("Service not available") and the failure in ``additional_info``. AuthorizeStart is
  never repeated once it may have reached Hubject (the client repeats it only when
  ``sent`` is False): a second call would open a second session;
* data the connector cannot send (translation, OICP context) becomes NotAuthorized with
  022 and the reasons.

A request whose ``deadline`` (the envelope's, or the bus's ``x-deadline``) has passed
when it is taken is not sent to Hubject and gets no reply: nobody waits for it any more,
and sending it could open a session nobody uses. It is logged and counted as dropped
(docs/contract.md says so). So is a request without a reply address.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import structlog

from hubject_connector.bus.base import DEADLINE_HEADER, Handler, IncomingMessage, QueueSpec, Reply
from hubject_connector.bus.contract import ContractError, Envelope, MessageType, Outcome, make_reply
from hubject_connector.flows.delivery import Flow, connector_refusal
from hubject_connector.flows.results import DATA_ERROR, Origin, Verdict
from hubject_connector.hubject.errors import HubjectTransportError, OicpStatusError
from hubject_connector.oicp import status
from hubject_connector.oicp.authorization import AuthorizeStart, AuthorizeStop
from hubject_connector.oicp.codec import OicpValidationError
from hubject_connector.translate import outbound
from hubject_connector.translate.errors import TranslationError

_log = structlog.get_logger(__name__)

#: The code of a NotAuthorized reply when Hubject gave no usable answer.
NO_ANSWER: Final = "320"
_STATUS_CODE: Final = re.compile(r"[0-9]{3}")
_DESCRIPTION_MAX: Final = 200
_INFO_MAX: Final = 1000


def _fit(text: str | None, limit: int) -> str | None:
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def deadline_of(message: IncomingMessage, envelope: Envelope) -> float | None:
    """The Unix time after which nobody waits for the reply, if the request has one."""
    candidates: list[float] = []
    if envelope.deadline is not None:
        candidates.append(envelope.deadline.timestamp())
    header = message.headers.get(DEADLINE_HEADER)
    if header:
        with contextlib.suppress(ValueError):
            candidates.append(float(header))
    return min(candidates) if candidates else None


def not_authorized(
    request: AuthorizeStart | AuthorizeStop | None,
    code: str,
    *,
    description: str | None = None,
    additional_info: str | None = None,
) -> dict[str, Any]:
    """The ``data`` of a NotAuthorized reply, echoing the request's session IDs.

    A code that is not three digits (no OICP code) cannot go into a reply: it is quoted in
    ``additional_info`` and the reply carries 320, as for no usable answer.
    """
    if not _STATUS_CODE.fullmatch(code):
        additional_info = f"Hubject answered status code {code!r}: {additional_info or ''}"
        code, description = NO_ANSWER, None
    data: dict[str, Any] = {
        "authorization_status": "NotAuthorized",
        "status_code": code,
        "status_description": _fit(description or status.describe(code).meaning,
                                   _DESCRIPTION_MAX),
    }
    info = _fit(additional_info, _INFO_MAX)
    if info:
        data["additional_info"] = info
    if request is not None:
        for key in ("session_id", "cpo_partner_session_id", "emp_partner_session_id"):
            value = getattr(request, key, None)
            if value:
                data[key] = value
    return data


class AuthorizationFlow(Flow):
    """Authorization requests from the ``authorization`` queue, answered (module doc)."""

    name = "authorization"
    what = "authorization request"

    def handler(self, spec: QueueSpec) -> Handler:
        """The request/reply handler: its return value is the reply."""
        return self.serve

    async def handle(self, message: IncomingMessage, envelope: Envelope) -> Verdict | None:
        """Not used: requests are answered by a reply, not a delivery result."""
        raise NotImplementedError("authorization requests are served by serve()")

    async def serve(self, message: IncomingMessage) -> Reply:
        """Answer one request (None: not answered, see the module doc)."""
        metrics = self.parts.metrics
        results = self.parts.results
        metrics.consumed.labels(self.name).inc()
        try:
            envelope = message.envelope
        except ContractError:
            results.count(self.name, Outcome.DEAD_LETTERED)
            raise
        deadline = deadline_of(message, envelope)
        if deadline is not None and time.time() >= deadline:
            late = time.time() - deadline
            _log.warning("flows.authorization_expired", message_id=envelope.id,
                         type=str(envelope.type), seconds_late=round(late, 3))
            results.count(self.name, Outcome.DROPPED)
            return None
        if message.reply_to is None:
            _log.warning("flows.authorization_without_reply_address", message_id=envelope.id,
                         type=str(envelope.type))
            results.count(self.name, Outcome.DROPPED)
            return None
        data, outcome = await self._authorize(envelope)
        results.count(self.name, outcome)
        return make_reply(envelope, data)

    async def _authorize(self, envelope: Envelope) -> tuple[dict[str, Any], Outcome]:
        """The reply's data and how to count it."""
        ctx = self.context
        request: AuthorizeStart | AuthorizeStop | None = None
        try:
            if envelope.type is MessageType.AUTHORIZATION_START_REQUEST:
                operation = "AuthorizeStart"
                request = outbound.authorize_start(envelope.data, ctx)
            else:
                operation = "AuthorizeStop"
                request = outbound.authorize_stop(envelope.data, ctx)
            operator_id = request.operator_id
            self.check(operation, request, operator_id)
        except (TranslationError, OicpValidationError) as exc:
            reason = connector_refusal(exc, self.what)
            _log.info("flows.authorization_refused", message_id=envelope.id, reason=reason)
            return not_authorized(request, DATA_ERROR, additional_info=reason), Outcome.REJECTED
        try:
            answer = await self.parts.client.call(operation, request, operator_id=operator_id)
        except OicpStatusError as exc:
            self._observe(envelope)
            return not_authorized(request, exc.code, description=exc.description,
                                  additional_info=exc.additional_info), Outcome.REJECTED
        except HubjectTransportError as exc:
            _log.warning("flows.authorization_no_answer", message_id=envelope.id,
                         operation=operation, error=str(exc), sent=exc.sent)
            return not_authorized(request, NO_ANSWER,
                                  additional_info=f"no answer from Hubject: {exc}"), \
                Outcome.REJECTED
        except Exception as exc:  # the requester waits: answer whatever went wrong
            _log.exception("flows.authorization_failed", message_id=envelope.id)
            return not_authorized(request, NO_ANSWER,
                                  additional_info=f"the connector failed: {exc}"), \
                Outcome.REJECTED
        self._observe(envelope)
        reply: Mapping[str, Any] = outbound.authorization_reply(answer)
        return dict(reply), Outcome.ACCEPTED

    def _observe(self, envelope: Envelope) -> None:
        origin = Origin.of(envelope)
        if origin.time is not None:
            delay = (datetime.now(UTC) - origin.time).total_seconds()
            self.parts.metrics.delay.labels(self.name).observe(max(0.0, delay))
