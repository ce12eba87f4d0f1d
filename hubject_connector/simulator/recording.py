"""The simulator's memory of every call: what came in, who sent it, when, what went out.

Tests assert on these records. Each has a start and an end on the monotonic clock, so
overlapping calls can be found afterwards; overlaps of a serialized operation (pushes that
Hubject requires one after another, OICP 2.3 "Data push operations") are also flagged as
they happen, per operation and client certificate.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from hubject_connector.certs import subject_carries_operator_id


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """The client certificate a caller presented (verified by the TLS handshake)."""

    subject: str
    issuer: str
    serial_number: int
    common_name: str | None
    #: SHA-256 fingerprint, lower-case hex.
    fingerprint: str
    certificate: x509.Certificate = field(compare=False, repr=False)

    @classmethod
    def from_der(cls, der: bytes) -> ClientCertificate:
        """Read a DER certificate as handed over by the TLS layer."""
        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return cls(
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            serial_number=cert.serial_number,
            common_name=str(names[0].value) if names else None,
            fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
            certificate=cert,
        )

    def carries_operator_id(self, operator_id: str) -> bool:
        """Whether the subject (CN or OU, as the dev PKI and Hubject write it) names it."""
        return subject_carries_operator_id(self.certificate, operator_id)


@dataclass(slots=True)
class RecordedRequest:
    """One call to the simulator, filled in as it is answered."""

    #: Sequence number, from 1, in order of arrival.
    number: int
    operation: str
    path: str
    #: Path parameters, e.g. ``{"operatorID": "DE*ABC"}``.
    path_params: Mapping[str, str]
    client: ClientCertificate | None
    #: Wall-clock time of arrival (UTC).
    received_at: datetime
    #: Monotonic seconds at arrival and at the answer (or the dropped connection).
    started: float
    ended: float | None = None
    raw_body: bytes = b""
    #: The parsed JSON body, or None where it was not JSON.
    json: Any = None
    #: The decoded OICP message, or None where decoding failed or was not reached.
    message: object | None = None
    http_status: int | None = None
    #: The answer's model (Acknowledgement, AuthorizationStart/Stop) when one was sent.
    answer: object | None = None
    #: The fault that shaped the answer, e.g. "http-503", "drop"; None for a normal answer.
    fault: str | None = None
    #: Whether another call of the same serialized operation was in flight meanwhile.
    overlapped: bool = False

    @property
    def result(self) -> bool | None:
        """The answer's ``Result`` (acknowledgements) or whether it authorized."""
        answer = self.answer
        if answer is None:
            return None
        result = getattr(answer, "result", None)
        if isinstance(result, bool):
            return result
        authorized = getattr(answer, "authorized", None)
        return authorized if isinstance(authorized, bool) else None

    @property
    def status_code(self) -> str | None:
        """The answer's OICP status code, e.g. "000", "022"."""
        status = getattr(self.answer, "status_code", None)
        code = getattr(status, "code", None)
        return code if isinstance(code, str) else None

    @property
    def additional_info(self) -> str | None:
        """The answer's StatusCode AdditionalInfo."""
        status = getattr(self.answer, "status_code", None)
        info = getattr(status, "additional_info", None)
        return info if isinstance(info, str) else None


@dataclass(frozen=True, slots=True)
class Overlap:
    """Two calls of one serialized operation from one client in flight at the same time."""

    operation: str
    #: The call that was already in flight, and the one that arrived meanwhile.
    first: int
    second: int


class Recorder:
    """Keeps the records and the calls in flight. Times are passed in (no clock here)."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.overlaps: list[Overlap] = []
        self._numbers = itertools.count(1)
        self._in_flight: dict[tuple[str, str], dict[int, RecordedRequest]] = {}

    def start(
        self,
        operation: str,
        *,
        path: str,
        path_params: Mapping[str, str],
        client: ClientCertificate | None,
        received_at: datetime,
        now: float,
        serialized: bool,
    ) -> RecordedRequest:
        """Record a call that has just arrived; flag it if it overlaps one in flight."""
        record = RecordedRequest(
            number=next(self._numbers), operation=operation, path=path,
            path_params=dict(path_params), client=client, received_at=received_at,
            started=now,
        )
        self.requests.append(record)
        if serialized:
            key = (operation, client.subject if client is not None else "")
            flying = self._in_flight.setdefault(key, {})
            for other in flying.values():
                other.overlapped = True
                record.overlapped = True
                self.overlaps.append(Overlap(operation, other.number, record.number))
            flying[record.number] = record
        return record

    def finish(self, record: RecordedRequest, *, now: float) -> None:
        """The call was answered (or its connection dropped)."""
        record.ended = now
        for flying in self._in_flight.values():
            flying.pop(record.number, None)

    def clear(self) -> None:
        """Forget every record and overlap (calls in flight stay tracked)."""
        self.requests.clear()
        self.overlaps.clear()

    def of(self, operation: str | None = None) -> list[RecordedRequest]:
        """The records of one operation (all when ``operation`` is None), in arrival order."""
        return [r for r in self.requests if operation is None or r.operation == operation]

    def client_certificates(self) -> list[ClientCertificate]:
        """Each distinct client certificate seen, in the order first seen."""
        seen: dict[str, ClientCertificate] = {}
        for record in self.requests:
            if record.client is not None:
                seen.setdefault(record.client.fingerprint, record.client)
        return list(seen.values())


def overlapping_pairs(records: Iterable[RecordedRequest]) -> list[tuple[int, int]]:
    """Pairs of record numbers whose [start, end] intervals intersect (analysis afterwards)."""
    done = sorted((r for r in records if r.ended is not None), key=lambda r: r.started)
    pairs = []
    for i, first in enumerate(done):
        for second in done[i + 1:]:
            if second.started >= (first.ended or 0.0):
                break
            pairs.append((first.number, second.number))
    return pairs


def max_calls_in_window(records: Iterable[RecordedRequest], window_seconds: float = 60.0) -> int:
    """The most calls that arrived within any ``window_seconds`` (a rolling minute)."""
    starts = sorted(r.started for r in records)
    window: deque[float] = deque()
    best = 0
    for start in starts:
        window.append(start)
        while window[0] <= start - window_seconds:
            window.popleft()
        best = max(best, len(window))
    return best
