"""Errors of the Hubject transport, under the one root ``ConnectorError``.

Every failure says which operation failed, after how many attempts, and, for transport
failures, whether the request may have reached Hubject (``sent``): ``False`` means it
certainly did not (the connection was never made), ``None`` means it may have. Callers
that must not act twice (AuthorizeStart) read ``sent`` before doing anything again.
"""

from __future__ import annotations

from typing import Any

from hubject_connector.errors import OicpError, TransportError
from hubject_connector.logs import mask_text
from hubject_connector.oicp import status
from hubject_connector.oicp.codec import Issue, OicpValidationError


class HubjectTransportError(TransportError):
    """A call to Hubject failed below the OICP layer."""

    #: False: the request certainly did not reach Hubject. None: it may have.
    sent: bool | None = None

    def __init__(self, message: str, *, operation: str = "", attempts: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.attempts = attempts

    def __str__(self) -> str:
        prefix = f"{self.operation}: " if self.operation else ""
        tries = f" (after {self.attempts} attempts)" if self.attempts > 1 else ""
        return f"{prefix}{self.message}{tries}"


class ConnectionFailed(HubjectTransportError):
    """No connection could be made (refused, unreachable, DNS): nothing was sent."""

    sent: bool | None = False


class ConnectTimeout(ConnectionFailed):
    """The connection was not established in time: nothing was sent."""


class ConnectionLost(HubjectTransportError):
    """The connection broke after the request may have been sent (no complete answer)."""

    sent = None


class RequestTimeout(HubjectTransportError):
    """No answer in time after the request was sent: Hubject may have processed it."""

    sent = None


class TlsError(HubjectTransportError):
    """The TLS session could not be established.

    Not repeated within a call: the same certificates give the same result. Still
    ``transient``: once the certificates are fixed or rotated, the same message goes
    through, so a queue keeps it rather than dead-lettering it.
    """

    sent: bool | None = False


class ClientCertificateRejected(TlsError):
    """Hubject refused our client certificate (wrong CA, not ours, revoked, missing)."""


class ClientCertificateExpired(ClientCertificateRejected):
    """Our client certificate has expired (or is not valid yet)."""


class ServerCertificateUntrusted(TlsError):
    """The server's certificate does not chain to the configured CA bundle, has expired,
    or does not match the host name."""


class HttpStatusError(HubjectTransportError):
    """Hubject answered with an HTTP error status and no usable OICP answer.

    ``status`` is the HTTP status, ``body_excerpt`` the start of the body (identifiers
    masked), ``retry_after`` the seconds Hubject asked us to wait, if it did.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body_excerpt: str = "",
        retry_after: float | None = None,
        transient: bool = False,
        operation: str = "",
        attempts: int = 1,
    ) -> None:
        super().__init__(message, operation=operation, attempts=attempts)
        self.status = status
        self.body_excerpt = body_excerpt
        self.retry_after = retry_after
        self.transient = transient
        # Hubject answered: the request reached it, though an error status usually means
        # it was not processed.
        self.sent = True


class OicpStatusError(OicpError):
    """Hubject answered, but with ``Result`` false or a status code other than 000.

    Carries the code, its description and additional info as Hubject sent them, whether
    the code is transient (status table), and the decoded answer in ``answer``.
    """

    def __init__(
        self,
        code: str,
        description: str | None = None,
        additional_info: str | None = None,
        *,
        answer: Any = None,
        operation: str = "",
        http_status: int = 200,
        attempts: int = 1,
    ) -> None:
        info = status.describe(code)
        # Hubject's texts may quote a contract ID or card UID: masked in the message (which
        # ends up in logs and on terminals), kept whole in the attributes.
        text = mask_text(description or info.meaning)
        extra = f" ({mask_text(additional_info)})" if additional_info else ""
        prefix = f"{operation}: " if operation else ""
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"{prefix}Hubject answered status {code}: {text}{extra}{tries}")
        self.code = code
        self.status_code = code
        self.description = description
        self.additional_info = additional_info
        self.transient = info.transient
        self.answer = answer
        self.operation = operation
        self.http_status = http_status
        self.attempts = attempts


class InvalidAnswerError(OicpValidationError):
    """Hubject's answer could not be decoded as the operation's answer message."""

    def __init__(
        self,
        issues: list[Issue],
        *,
        operation: str = "",
        http_status: int = 200,
        body_excerpt: str = "",
    ) -> None:
        super().__init__(issues)
        self.operation = operation
        self.http_status = http_status
        self.body_excerpt = body_excerpt

    def __str__(self) -> str:
        prefix = f"{self.operation}: " if self.operation else ""
        return f"{prefix}invalid answer from Hubject: {mask_text(super().__str__())}"


class RedirectRefused(HttpStatusError):
    """Hubject (or what answered at the base URL) redirected the request: never followed.

    Following a redirect would post the request again to a URL nobody configured, perhaps
    in clear text and without our certificate. ``location`` is the target as sent.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        location: str | None,
        operation: str = "",
        attempts: int = 1,
    ) -> None:
        super().__init__(message, status=status, operation=operation, attempts=attempts)
        self.location = location
