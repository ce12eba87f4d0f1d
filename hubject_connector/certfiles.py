"""Certificate files kept in force while they rotate: fingerprint, expiry warnings, watch.

Both TLS rooms load their context from PEM files that Kubernetes may swap in place:
``hubject.tls.ClientTls`` (our client certificate for calls to Hubject) and
``inbound.tls.ServerTls`` (our server certificate for Hubject's calls). What they do alike
lives here, once: a fingerprint of the files that says when a set changed, the warnings
as the certificate in force nears its expiry (once per set and threshold), and the loop
that checks the files while no request or connection does. What each room loads, and
what it refuses, stays in that room.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import ssl
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Final

from hubject_connector.certs import CertificateInfo

#: Days before expiry at which a warning is logged (once per certificate and threshold).
EXPIRY_WARNING_DAYS: Final = (30, 7)

WallClock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC (the default wall clock)."""
    return dt.datetime.now(dt.UTC)


def ssl_reason(exc: ssl.SSLError) -> str:
    """OpenSSL's short reason for ``exc`` (``KEY_VALUES_MISMATCH`` …), else its text."""
    return str(getattr(exc, "reason", None) or exc)


def fingerprint(paths: Iterable[Path | None]) -> bytes:
    """SHA-256 over the names and contents of ``paths`` (unset and missing files count too).

    A set whose fingerprint changed is loaded again; one that did not is left alone.
    """
    digest = hashlib.sha256()
    for path in paths:
        digest.update(b"\0path\0" + os.fsencode(str(path)))
        if path is None:
            continue
        try:
            digest.update(path.read_bytes())
        except OSError as exc:
            digest.update(f"\0error\0{exc.errno}".encode())
    return digest.digest()


class ExpiryWarnings:
    """Logs that a certificate in force has expired or expires within a threshold.

    Each (file set, threshold) is logged once, however often the files are checked: an
    error once expired, else a warning for the nearest threshold of ``EXPIRY_WARNING_DAYS``
    it is within. ``role`` names the certificate in the messages ("client", "server").
    """

    def __init__(self, role: str, log: Any, now: WallClock) -> None:
        self._role = role
        self._log = log
        self._now = now
        self._warned: set[tuple[bytes, int]] = set()

    def check(self, info: CertificateInfo | None, set_fingerprint: bytes) -> None:
        """Log what is due for the certificate ``info`` of the set ``set_fingerprint``."""
        if info is None:
            return
        left = info.not_after - self._now()
        if left <= dt.timedelta(0):
            key = (set_fingerprint, 0)
            if key not in self._warned:
                self._warned.add(key)
                self._log.error(f"the {self._role} certificate has expired: Hubject refuses it",
                                not_after=info.not_after.isoformat(), file=str(info.path))
            return
        for threshold in sorted(EXPIRY_WARNING_DAYS):
            if left <= dt.timedelta(days=threshold):
                key = (set_fingerprint, threshold)
                if key not in self._warned:
                    self._warned.add(key)
                    self._log.warning(
                        f"the {self._role} certificate expires within {threshold} days",
                        days_left=int(left / dt.timedelta(days=1)),
                        not_after=info.not_after.isoformat(), file=str(info.path),
                        threshold_days=threshold,
                    )
                break


async def watch(
    check: Callable[[], object],
    interval: float,
    *,
    role: str,
    log: Any,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Call ``check`` every ``interval`` seconds (at least one) until cancelled.

    The watch must outlive one bad look at the files: ``check`` keeps the previous context
    on a broken set, and anything else it raises (a file vanishing mid-rotation) is logged
    and looked at again next interval.
    """
    interval = max(interval, 1.0)
    while True:
        await sleep(interval)
        try:
            check()
        except Exception:
            log.exception(f"checking the {role} certificate files failed")
