"""Charging notifications to Hubject (eRoamingChargingNotifications 1.1).

What passes through: ``notification.start.v1``, ``.progress.v1``, ``.end.v1`` and
``.error.v1`` from the ``notifications`` queue, each sent as one ChargingNotification
(the Type decides the message, never the OpenAPI's ambiguous oneOf); one delivery
result per message.

Progress is throttled per session: the spec asks for at least 5 minutes between two
progress notifications of one session (eRoamingChargingNotifications, "Progress"), the
interval being ``flows.progress_interval_seconds``. The state store claims the slot
(``claim_progress``, atomic across processes) at the notification's ``event_occurred``,
so the spacing follows the charging session's own clock, also when a backlog is sent at
once. A progress over the limit is not sent: its result is ``dropped`` saying so. A retry
of a message that already claimed its slot does not claim again (it would refuse itself).
"""

from __future__ import annotations

from typing import Final

from hubject_connector.bus.base import IncomingMessage
from hubject_connector.bus.contract import Envelope, MessageType
from hubject_connector.flows.delivery import Flow, attempts_of, refusal_reason
from hubject_connector.flows.results import Verdict
from hubject_connector.hubject.errors import OicpStatusError
from hubject_connector.oicp.notifications import ChargingNotificationProgress
from hubject_connector.translate import outbound

OPERATION: Final = "ChargingNotifications"
NOTIFICATIONS: Final = frozenset({
    MessageType.NOTIFICATION_START,
    MessageType.NOTIFICATION_PROGRESS,
    MessageType.NOTIFICATION_END,
    MessageType.NOTIFICATION_ERROR,
})


def interval_words(seconds: float) -> str:
    """``300`` → "5 minutes", ``90`` → "90 seconds"."""
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} seconds"


class NotificationFlow(Flow):
    """Charging notifications from the ``notifications`` queue to Hubject (module doc)."""

    name = "notifications"
    what = "charging notification"

    async def handle(self, message: IncomingMessage, envelope: Envelope) -> Verdict | None:
        """Send one notification (a progress only within the limit); the verdict."""
        if envelope.type not in NOTIFICATIONS:
            return Verdict.dropped(f"{envelope.type} is not handled by the notification flow")
        request = outbound.notification(envelope.type, envelope.data, self.context)
        operator_id = request.operator_id
        self.check(OPERATION, request, operator_id)
        if isinstance(request, ChargingNotificationProgress) and message.retries == 0:
            interval = self.parts.config.flows.progress_interval_seconds
            allowed = await self.parts.store.claim_progress(
                request.session_id, request.event_occurred, interval)
            if not allowed:
                return Verdict.dropped(
                    f"a progress notification of this session was sent less than "
                    f"{interval_words(interval)} before this one (Hubject allows one per "
                    f"{interval_words(interval)} and session)")
        try:
            await self.parts.client.call(OPERATION, request, operator_id=operator_id)
        except OicpStatusError as exc:
            if exc.transient:
                raise
            return Verdict.refused_by_hubject(
                exc, attempts=attempts_of(message), session_id=request.session_id,
                reason=refusal_reason(exc, "charging notification"))
        return Verdict.accepted(attempts=attempts_of(message), session_id=request.session_id)
