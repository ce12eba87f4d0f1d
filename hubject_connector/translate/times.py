"""Times for Hubject: the charge point's local offset for times the backend gives in UTC.

Spec: OICP 2.3 writes every date-time as ``YYYY-MM-DDThh:mm:ssTZD``, and EMPs show session
times to drivers, so Hubject asks for the charge point's local time with its offset. A
backend often knows only UTC. A time it gives in UTC (``Z``, ``+00:00``) is therefore moved
to the charge point's zone at that very instant (Europe/Berlin: ``+01:00`` in winter,
``+02:00`` in summer); a time with any other offset already says where it was taken and
is kept as given. Either way the instant does not change, only how it is written.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta, tzinfo
from typing import Final

_ZERO: Final = timedelta(0)


def zone_named(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone called ``name`` (e.g. "Europe/Berlin").

    Raises ``ValueError`` with a sentence for the user when there is no such zone.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("is not an IANA time zone name (e.g. \"Europe/Berlin\")")
    try:
        return zoneinfo.ZoneInfo(name)
    # ZoneInfoNotFoundError for unknown names; ValueError for paths ("../x", "/etc");
    # OSError or UnicodeError for odd names that reach the file system.
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):
        raise ValueError(
            f"is not a known IANA time zone: {name!r} (e.g. \"Europe/Berlin\")"
        ) from None


def is_utc(value: datetime) -> bool:
    """Whether ``value`` is written in UTC (offset zero: ``Z``, ``+00:00`` or ``-00:00``)."""
    return value.utcoffset() == _ZERO


def local_time(value: datetime, zone: tzinfo) -> datetime:
    """``value`` with the local offset of ``zone`` if it is given in UTC, else unchanged.

    The instant stays the same. Raises ``ValueError`` for a time without an offset, which
    says nothing about when it happened.
    """
    if value.utcoffset() is None:
        raise ValueError("a time without an offset cannot be placed in a time zone")
    if not is_utc(value):
        return value
    return value.astimezone(zone)
