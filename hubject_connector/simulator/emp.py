"""The simulator as EMP: remote start/stop and reservations sent to a CPO, as Hubject would.

Hubject forwards an EMP's eRoamingAuthorizeRemoteStart/Stop and
eRoamingAuthorizeRemoteReservationStart/Stop to the CPO's own HTTPS endpoint, presenting
Hubject's client certificate, and expects an eRoamingAcknowledgement (OICP 2.3 CPO,
eRoamingAuthorizeRemoteStart). ``SimulatorEmp`` does the same against a CPO base URL (the
part before ``/charging/...``), trusting only the CA it is given for the CPO's server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from hubject_connector.errors import TransportError
from hubject_connector.oicp import codec
from hubject_connector.oicp.common import Acknowledgement, Identification, RemoteIdentification
from hubject_connector.oicp.messages import decode_message
from hubject_connector.oicp.operations import Direction
from hubject_connector.oicp.operations import operation as find_operation
from hubject_connector.oicp.remote import (
    AuthorizeRemoteReservationStart,
    AuthorizeRemoteReservationStop,
    AuthorizeRemoteStart,
    AuthorizeRemoteStop,
)
from hubject_connector.simulator.config import DEFAULT_PROVIDER_ID
from hubject_connector.simulator.state import Session
from hubject_connector.simulator.tls import client_context

RemoteRequest = (
    AuthorizeRemoteStart
    | AuthorizeRemoteStop
    | AuthorizeRemoteReservationStart
    | AuthorizeRemoteReservationStop
)


class EmpCallError(TransportError):
    """A call to the CPO failed: no connection, no answer in time, or not HTTP 200."""

    def __init__(self, message: str, *, http_status: int | None = None,
                 body: bytes = b"") -> None:
        super().__init__(message)
        self.http_status = http_status
        self.body = body


@dataclass(frozen=True, slots=True)
class EmpExchange:
    """One call the EMP made and the CPO's answer."""

    operation: str
    url: str
    request: RemoteRequest
    http_status: int
    raw_answer: bytes
    acknowledgement: Acknowledgement


def _remote(evco_id: str) -> Identification:
    # Spec: IdentificationType note 2: remote authorization uses RemoteIdentification only.
    return Identification(remote=RemoteIdentification(evco_id=evco_id))


class SimulatorEmp:
    """Sends remote commands to a CPO over mutual TLS and decodes its acknowledgements.

    ``cpo_url`` is the base the operation paths are appended to, e.g.
    ``https://127.0.0.1:8443/api/oicp``. Use it as an async context manager or ``close()``.
    """

    def __init__(
        self,
        cpo_url: str,
        *,
        cert: Path,
        key: Path,
        ca: Path,
        provider_id: str = DEFAULT_PROVIDER_ID,
        timeout: float = 10.0,
        on_session: Callable[[Session], None] | None = None,
    ) -> None:
        self.cpo_url = cpo_url.rstrip("/")
        self.provider_id = provider_id
        self.exchanges: list[EmpExchange] = []
        self._ssl = client_context(cert, key, ca)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._on_session = on_session
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SimulatorEmp:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections to the CPO."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl), timeout=self._timeout
            )
        return self._session

    async def send(self, message: RemoteRequest) -> Acknowledgement:
        """Send one remote request; return the CPO's decoded eRoamingAcknowledgement.

        Raises ``EmpCallError`` when there is no HTTP 200 answer, and
        ``OicpValidationError`` when the answer is not a valid acknowledgement.
        """
        operation = find_operation(type(message).OICP_NAME)
        if operation.direction is not Direction.HUBJECT_TO_CPO:  # pragma: no cover - typed
            raise ValueError(f"{operation.name} is not sent to a CPO")
        url = self.cpo_url + operation.url_path(providerID=message.provider_id)
        try:
            async with self._client().post(
                url, data=codec.encode(message),
                headers={"Content-Type": "application/json; charset=utf-8"},
            ) as response:
                raw = await response.read()
                http_status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EmpCallError(f"{operation.name} to {url} failed: {exc!r}") from exc
        if http_status != 200:
            raise EmpCallError(f"{operation.name} to {url}: HTTP {http_status}",
                               http_status=http_status, body=raw)
        answer = decode_message(operation.response, raw)
        if not isinstance(answer, Acknowledgement):  # pragma: no cover - the registry's type
            raise TypeError(f"{operation.response} decoded to {type(answer).__name__}")
        self.exchanges.append(EmpExchange(operation.name, url, message, http_status, raw, answer))
        return answer

    def _register(self, message: Any, origin: Any, ack: Acknowledgement) -> None:
        if self._on_session is not None and ack.result and message.session_id is not None:
            self._on_session(Session(
                session_id=message.session_id, origin=origin, provider_id=message.provider_id,
                evse_id=message.evse_id,
                identification=getattr(message, "identification", None),
                cpo_partner_session_id=ack.cpo_partner_session_id,
                emp_partner_session_id=message.emp_partner_session_id,
            ))

    async def remote_start(
        self,
        evse_id: str,
        evco_id: str,
        *,
        session_id: str | None = None,
        partner_product_id: str | None = None,
        emp_partner_session_id: str | None = None,
    ) -> Acknowledgement:
        """eRoamingAuthorizeRemoteStart; a fresh SessionID unless one is given."""
        message = AuthorizeRemoteStart(
            session_id=session_id or str(uuid.uuid4()), provider_id=self.provider_id,
            evse_id=evse_id, identification=_remote(evco_id),
            partner_product_id=partner_product_id,
            emp_partner_session_id=emp_partner_session_id,
        )
        ack = await self.send(message)
        self._register(message, "remote-start", ack)
        return ack

    async def remote_stop(self, session_id: str, evse_id: str, *,
                          emp_partner_session_id: str | None = None) -> Acknowledgement:
        """eRoamingAuthorizeRemoteStop of the session ``session_id``."""
        return await self.send(AuthorizeRemoteStop(
            session_id=session_id, provider_id=self.provider_id, evse_id=evse_id,
            emp_partner_session_id=emp_partner_session_id,
        ))

    async def reservation_start(
        self,
        evse_id: str,
        evco_id: str,
        *,
        session_id: str | None = None,
        duration_minutes: int | None = None,
        partner_product_id: str | None = None,
        emp_partner_session_id: str | None = None,
    ) -> Acknowledgement:
        """eRoamingAuthorizeRemoteReservationStart; a fresh SessionID unless one is given."""
        message = AuthorizeRemoteReservationStart(
            session_id=session_id or str(uuid.uuid4()), provider_id=self.provider_id,
            evse_id=evse_id, identification=_remote(evco_id), duration=duration_minutes,
            partner_product_id=partner_product_id,
            emp_partner_session_id=emp_partner_session_id,
        )
        ack = await self.send(message)
        self._register(message, "reservation", ack)
        return ack

    async def reservation_stop(self, session_id: str, evse_id: str, *,
                               emp_partner_session_id: str | None = None) -> Acknowledgement:
        """eRoamingAuthorizeRemoteReservationStop of the reservation ``session_id``."""
        return await self.send(AuthorizeRemoteReservationStop(
            session_id=session_id, provider_id=self.provider_id, evse_id=evse_id,
            emp_partner_session_id=emp_partner_session_id,
        ))

    @property
    def last_session_id(self) -> str | None:
        """The SessionID of the latest request sent (to stop what was just started)."""
        return self.exchanges[-1].request.session_id if self.exchanges else None
