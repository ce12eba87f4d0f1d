"""The embedded bus's webhook: how messages for the backend reach it over HTTP.

What passes through: envelopes, as bytes, to ``bus.embedded.webhook_url``. Two kinds of
call, both a POST of one CloudEvents JSON envelope with ``X-Routing-Key`` and
``X-Correlation-ID``:

* :meth:`Webhook.forward` delivers a message that needs no answer (a delivery result, a
  reply to the backend's request). Any 2xx will do; anything else raises
  :class:`~hubject_connector.bus.base.RetryLater`, so the queue retries it later and
  dead-letters it once the retries are used up (docs/contract.md promises this).
* :meth:`Webhook.call` sends a command with ``X-Deadline`` and hands back the response
  body, the reply envelope; the bus decides what a reply after the deadline becomes.

It owns no session: the bus makes one while connected and passes it in.
"""

from __future__ import annotations

import time
from typing import Final

import aiohttp

from hubject_connector.bus.base import IncomingMessage, RequestFailed, RetryLater
from hubject_connector.bus.contract import CLOUDEVENTS_CONTENT_TYPE
from hubject_connector.errors import BusError

#: How long a webhook call may go on after its deadline, so that a late reply is kept.
LATE_REPLY_GRACE_SECONDS: Final = 60.0


class Webhook:
    """The backend's HTTP endpoint for the connector's messages."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self._session = session

    async def forward(self, message: IncomingMessage) -> None:
        """Deliver one message that needs no answer; raise ``RetryLater`` unless 2xx."""
        headers = {
            "Content-Type": CLOUDEVENTS_CONTENT_TYPE,
            "X-Routing-Key": message.routing_key,
        }
        if message.envelope.correlation_id is not None:
            headers["X-Correlation-ID"] = message.envelope.correlation_id
        try:
            async with self._session.post(
                self.url,
                data=message.body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=LATE_REPLY_GRACE_SECONDS),
            ) as response:
                status = response.status
                text = (await response.read())[:200].decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryLater(f"the webhook at {self.url} failed: {exc!r}") from exc
        if status >= 300:
            # docs/contract.md promises the backend: any answer but 2xx is retried later
            # (then, the delays used up, the message waits in the dead letters).
            raise RetryLater(f"the webhook answered HTTP {status}: {text}")

    async def call(
        self, routing_key: str, body: bytes, correlation_id: str, deadline: float
    ) -> bytes:
        """POST a command; the response body (the reply), waiting past ``deadline`` a while.

        Raises :class:`RequestFailed` for an answer that is no reply, ``BusError``
        (transient) when the webhook cannot be reached.
        """
        headers = {
            "Content-Type": CLOUDEVENTS_CONTENT_TYPE,
            "X-Correlation-ID": correlation_id,
            "X-Routing-Key": routing_key,
            # Unix time after which the connector no longer waits for this answer.
            "X-Deadline": f"{deadline:.3f}",
        }
        client_timeout = aiohttp.ClientTimeout(
            total=max(0.0, deadline - time.time()) + LATE_REPLY_GRACE_SECONDS
        )
        try:
            async with self._session.post(
                self.url, data=body, headers=headers, timeout=client_timeout
            ) as response:
                reply = await response.read()
                if response.status >= 300 or not reply:
                    raise RequestFailed(
                        f"the webhook answered HTTP {response.status} without a reply"
                        + (f": {reply[:200].decode('utf-8', 'replace')}" if reply else "")
                    )
                return reply
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BusError(f"the webhook at {self.url} failed: {exc!r}") from exc
