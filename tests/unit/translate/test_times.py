"""Times given in UTC reach Hubject with the charge point's local offset (issue 9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubject_connector.bus.contract import MessageType, make_envelope
from hubject_connector.oicp import codec
from hubject_connector.oicp.model import format_date_time, parse_date_time
from hubject_connector.translate.outbound import (
    Context,
    TranslationError,
    charge_detail_record,
    notification,
)
from hubject_connector.translate.times import local_time, zone_named
from tests.unit.translate.conftest import Example

T = MessageType


def cdr_times(example: Example, ctx: Context, **times: str) -> dict[str, str]:
    """The CDR's four session times as written to Hubject, after replacing ``times``."""
    data = example(T.CDR)
    data.update(times)
    body = codec.dump(charge_detail_record(data, ctx))
    return {key: body[key] for key in ("SessionStart", "ChargingStart", "ChargingEnd",
                                       "SessionEnd")}


def winter_and_summer(day: str) -> dict[str, str]:
    return {
        "session_start": f"{day}T12:29:58Z",
        "charging_start": f"{day}T12:30:05Z",
        "charging_end": f"{day}T13:35:00.250Z",
        "session_end": f"{day}T13:40:30+00:00",
    }


def test_berlin_in_january_is_one_hour_ahead(example: Example, ctx: Context) -> None:
    assert cdr_times(example, ctx, **winter_and_summer("2024-01-15")) == {
        "SessionStart": "2024-01-15T13:29:58+01:00",
        "ChargingStart": "2024-01-15T13:30:05+01:00",
        "ChargingEnd": "2024-01-15T14:35:00.250+01:00",
        "SessionEnd": "2024-01-15T14:40:30+01:00",
    }


def test_berlin_in_july_is_two_hours_ahead(example: Example, ctx: Context) -> None:
    assert cdr_times(example, ctx, **winter_and_summer("2024-07-15")) == {
        "SessionStart": "2024-07-15T14:29:58+02:00",
        "ChargingStart": "2024-07-15T14:30:05+02:00",
        "ChargingEnd": "2024-07-15T15:35:00.250+02:00",
        "SessionEnd": "2024-07-15T15:40:30+02:00",
    }


def test_the_offset_is_the_one_at_that_instant(example: Example, ctx: Context) -> None:
    # Berlin left summer time at 01:00 UTC on 27 October 2024: a session across it.
    times = cdr_times(example, ctx, session_start="2024-10-27T00:50:00Z",
                      charging_start="2024-10-27T00:55:00Z",
                      charging_end="2024-10-27T01:05:00Z", session_end="2024-10-27T01:10:00Z")
    assert times == {
        "SessionStart": "2024-10-27T02:50:00+02:00",
        "ChargingStart": "2024-10-27T02:55:00+02:00",
        "ChargingEnd": "2024-10-27T02:05:00+01:00",
        "SessionEnd": "2024-10-27T02:10:00+01:00",
    }


def test_a_time_with_another_offset_is_kept(example: Example, ctx: Context) -> None:
    times = cdr_times(example, ctx, charging_start="2024-01-15T18:00:05+05:30",
                      session_start="2024-01-15T12:29:58Z")
    assert times["ChargingStart"] == "2024-01-15T18:00:05+05:30"
    assert times["SessionStart"] == "2024-01-15T13:29:58+01:00"


def test_the_messages_time_zone_wins_over_the_configured_one(
    example: Example, ctx: Context
) -> None:
    data = example(T.NOTIFICATION_START)
    data.update(time_zone="Asia/Tokyo", charging_start="2024-07-15T12:30:05Z")
    del data["session_start"]
    make_envelope(T.NOTIFICATION_START, data)  # the contract takes it
    body = codec.dump(notification(T.NOTIFICATION_START, data, ctx))
    assert body["ChargingStart"] == "2024-07-15T21:30:05+09:00"
    del data["time_zone"]
    body = codec.dump(notification(T.NOTIFICATION_START, data, ctx))
    assert body["ChargingStart"] == "2024-07-15T14:30:05+02:00"


@pytest.mark.parametrize(
    "message_type",
    [T.NOTIFICATION_START, T.NOTIFICATION_PROGRESS, T.NOTIFICATION_END, T.NOTIFICATION_ERROR,
     T.CDR],
)
def test_an_unknown_time_zone_is_refused(
    example: Example, ctx: Context, message_type: MessageType
) -> None:
    data = example(message_type)
    data["time_zone"] = "Europe/Atlantis"
    def translate() -> object:
        if message_type is T.CDR:
            return charge_detail_record(data, ctx)
        return notification(message_type, data, ctx)

    with pytest.raises(TranslationError) as info:
        translate()
    assert [(i.pointer, i.message) for i in info.value.issues] == [
        ("/data/time_zone",
         "is not a known IANA time zone: 'Europe/Atlantis' (e.g. \"Europe/Berlin\")")
    ]


@pytest.mark.parametrize("name", ["", "../etc/passwd", "/usr/share/zoneinfo/UTC", "Europe"])
def test_names_that_are_no_zone(name: str) -> None:
    with pytest.raises(ValueError, match="IANA time zone"):
        zone_named(name)


def test_the_encoder_writes_an_offset_never_z(example: Example) -> None:
    in_utc = Context("DE*ABC", "ABC Charging", ZoneInfo("UTC"))
    data = example(T.NOTIFICATION_START)
    data.update(charging_start="2024-07-15T12:30:05Z", session_start="2024-07-15T12:29:58Z")
    body = codec.encode(notification(T.NOTIFICATION_START, data, in_utc)).decode()
    assert '"ChargingStart":"2024-07-15T12:30:05+00:00"' in body
    assert 'Z"' not in body


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu",
         "Pacific/Chatham", "America/St_Johns", "UTC"]


@given(
    instant=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                         timezones=st.just(UTC)),
    name=st.sampled_from(ZONES),
)
def test_a_utc_time_keeps_its_instant_and_takes_the_zones_offset(
    instant: datetime, name: str
) -> None:
    zone = ZoneInfo(name)
    local = local_time(instant, zone)
    # Not "local == instant": an hour repeated at the end of summer time (fold=1) compares
    # unequal across zones by PEP 495, although it is the same instant.
    assert local.astimezone(UTC) == instant
    # tzinfo.fromutc is the zone's own rule for the local time of a UTC instant.
    assert local.utcoffset() == zone.fromutc(instant.replace(tzinfo=zone)).utcoffset()
    written = format_date_time(local)
    assert parse_date_time(written) == instant
    assert not written.endswith("Z")


@given(
    instant=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
    minutes=st.integers(-14 * 60, 14 * 60).filter(bool),
)
def test_a_time_with_an_offset_other_than_utc_is_never_moved(
    instant: datetime, minutes: int
) -> None:
    given_time = instant.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    assert local_time(given_time, ZoneInfo("Europe/Berlin")).utcoffset() == timedelta(
        minutes=minutes
    )


def test_a_time_without_offset_cannot_be_placed() -> None:
    with pytest.raises(ValueError, match="without an offset"):
        local_time(datetime(2024, 1, 1), ZoneInfo("Europe/Berlin"))
