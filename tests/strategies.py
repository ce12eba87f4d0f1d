"""Hypothesis strategies for the OICP models, derived from the models' own declarations.

``from_model(cls)`` reads ``model.fields_of(cls)`` (types, ID pattern names, length limits,
decimal places, ranges, item counts) and builds objects that obey them, so a rule added to a
model is picked up here without another list to keep in step. Rules across fields, which
the declarations cannot express (exactly one Identification option, an end not before its
start, ...), are met by overrides registered with ``@override(cls)``: they build valid
objects directly. Every generated object with ``oicp_issues`` is also filtered on it, as a
safety net only: an override that builds invalid objects shows up as a Hypothesis health
check failure, not as silently fewer examples.

Sizes are kept modest (short lists and texts, boundary-length strings made of one repeated
character), as the tests run on small machines.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from hypothesis import strategies as st

from hubject_connector.oicp import (
    authorization,
    cdr,
    common,
    evse,
    notifications,
    patterns,
    pricing,
    remote,
)
from hubject_connector.oicp.model import FieldInfo, Rule, fields_of

T = TypeVar("T")

#: Longest free text generated, apart from strings of exactly the field's maximum length.
TEXT_MAX = 24
#: Most items in a generated list (unless the model demands more).
LIST_MAX = 3
#: Bounds for numbers the model leaves unbounded.
INT_BOUND = 10**9
DECIMAL_BOUND = Decimal(10**7)
#: Decimal places tried where the model does not cap them.
DEFAULT_PLACES = 4
#: Date-times between these (naive, then given a fixed offset).
TIME_MIN = datetime(2000, 1, 1)
TIME_MAX = datetime(2099, 12, 31)
#: Longest span between a start and its end.
SPAN_MAX = timedelta(days=3)

#: Any character that UTF-8 can carry (no lone surrogates).
CHARACTERS = st.characters(codec="utf-8")

_OVERRIDES: dict[type, Callable[[], st.SearchStrategy[Any]]] = {}
_CACHE: dict[type, st.SearchStrategy[Any]] = {}


def override(model: type) -> Callable[[Callable[[], st.SearchStrategy[T]]], Callable[[], Any]]:
    """Register a function returning the strategy ``from_model(model)`` is to use."""

    def register(build: Callable[[], st.SearchStrategy[T]]) -> Callable[[], Any]:
        _OVERRIDES[model] = build
        _CACHE.pop(model, None)
        return build

    return register


def from_model(model: type[T], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[T]:
    """Valid instances of ``model``.

    ``fields`` replaces the strategy of the named fields (Python names); without them, a
    registered override is used if there is one, else the generic derivation.
    """
    if fields:
        return _checked(model, _generic(model, fields))
    cached = _CACHE.get(model)
    if cached is None:
        build = _OVERRIDES.get(model)
        base = build() if build is not None else _generic(model, {})
        cached = _CACHE[model] = _checked(model, base)
    return cached


def _checked(model: type[T], strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    if not hasattr(model, "oicp_issues"):
        return strategy
    return strategy.filter(_valid)


def _valid(obj: Any) -> bool:
    issues: list[tuple[str, str]] = obj.oicp_issues()
    return not issues


def _generic(model: type[T], fixed: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[T]:
    infos = fields_of(model)
    unknown = set(fixed) - {info.name for info in infos}
    if unknown:
        raise TypeError(f"{model.__name__} has no fields {sorted(unknown)}")
    kwargs = {info.name: fixed.get(info.name, field_strategy(info)) for info in infos}
    return st.builds(model, **kwargs)


def _info(model: type, name: str) -> FieldInfo:
    for info in fields_of(model):
        if info.name == name:
            return info
    raise TypeError(f"{model.__name__} has no field {name!r}")


def field_strategy(info: FieldInfo) -> st.SearchStrategy[Any]:
    """Values for one field: its rules, item counts, and sometimes None if it is optional."""
    strategy = _value(info.base, info.rule)
    if info.is_list:
        low = info.rule.min_items or 0
        high = max(low, LIST_MAX)
        if info.rule.max_items is not None:
            high = min(high, info.rule.max_items)
        strategy = st.lists(strategy, min_size=low, max_size=high)
    if info.optional and not info.required:
        strategy = st.none() | strategy
    return strategy


def value_of(model: type, name: str) -> st.SearchStrategy[Any]:
    """Values for the field ``name`` of ``model``, never None."""
    info = _info(model, name)
    return field_strategy(dataclasses.replace(info, optional=False))


def _value(base: Any, rule: Rule) -> st.SearchStrategy[Any]:
    if isinstance(base, type) and dataclasses.is_dataclass(base):
        return from_model(base)
    if isinstance(base, type) and issubclass(base, StrEnum):
        return st.sampled_from(list(base))
    if base is str:
        return text(rule)
    if base is bool:
        return st.booleans()
    if base is int:
        low = -INT_BOUND if rule.minimum is None else int(rule.minimum)
        high = INT_BOUND if rule.maximum is None else int(rule.maximum)
        return st.integers(min_value=low, max_value=high)
    if base is Decimal:
        return decimals(rule)
    if base is datetime:
        return date_times()
    raise TypeError(f"no strategy for {base!r}")


def text(rule: Rule) -> st.SearchStrategy[str]:
    """Strings obeying a rule: the named pattern (whole string), and the length limits."""
    low = rule.min_length or 0
    high = rule.max_length
    if rule.pattern is not None:
        strategy = st.from_regex(patterns.compiled(rule.pattern), fullmatch=True)
        if low or high is not None:
            strategy = strategy.filter(
                lambda s: low <= len(s) and (high is None or len(s) <= high)
            )
        return strategy
    cap = TEXT_MAX if high is None else min(high, TEXT_MAX)
    strategy = st.text(CHARACTERS, min_size=low, max_size=max(low, cap))
    if high is not None and high > cap:
        # The limit itself, cheaply: one character repeated.
        limit = high
        strategy = strategy | st.builds(lambda c: c * limit, CHARACTERS)
    return strategy


def decimals(rule: Rule) -> st.SearchStrategy[Decimal]:
    """Finite decimals within the rule's range, with at most ``places`` decimal places."""
    low = -DECIMAL_BOUND if rule.minimum is None else Decimal(rule.minimum)
    high = DECIMAL_BOUND if rule.maximum is None else Decimal(rule.maximum)
    most = DEFAULT_PLACES if rule.places is None else rule.places
    return st.integers(0, most).flatmap(
        lambda places: st.decimals(
            min_value=low, max_value=high, places=places, allow_nan=False, allow_infinity=False
        )
    )


def offsets() -> st.SearchStrategy[timezone]:
    """Fixed UTC offsets in whole minutes, within the ±14 h used on Earth."""
    return st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


def date_times() -> st.SearchStrategy[datetime]:
    """Offset-aware date-times (any microseconds) with a fixed offset."""
    return st.datetimes(min_value=TIME_MIN, max_value=TIME_MAX, timezones=offsets())


def later(start: datetime) -> st.SearchStrategy[datetime]:
    """An instant not before ``start`` (possibly equal), written with any offset."""
    return st.builds(
        lambda delta, tz: (start + delta).astimezone(tz),
        st.timedeltas(min_value=timedelta(0), max_value=SPAN_MAX),
        offsets(),
    )


def _session_times(draw: st.DrawFn, *optional: str) -> dict[str, datetime | None]:
    """session_start <= charging_start <= charging_end <= session_end (each with any offset):
    the session encloses the charging. The fields named in ``optional`` may be None."""
    names = ("session_start", "charging_start", "charging_end", "session_end")
    times: dict[str, datetime | None] = {}
    instant = draw(date_times())
    for name in names:
        instant = draw(later(instant))
        times[name] = None if name in optional and draw(st.booleans()) else instant
    return times


def _energy(
    draw: st.DrawFn, model: type, consumed_name: str, *, consumed_optional: bool
) -> dict[str, Decimal | None]:
    """Meter values and consumed energy that agree: consumed = end - start when all given."""
    meter_start = draw(st.none() | value_of(model, "meter_value_start"))
    consumed = draw(value_of(model, consumed_name))
    present = draw(st.booleans())
    meter_end = meter_start + consumed if meter_start is not None and present else None
    if consumed_optional and draw(st.booleans()):
        consumed = None
        if meter_end is None:
            meter_end = draw(st.none() | value_of(model, "meter_value_end"))
    return {
        "meter_value_start": meter_start,
        "meter_value_end": meter_end,
        consumed_name: consumed,
    }


# --- overrides: rules across fields ----------------------------------------------------------


def one_of_fields(
    model: type[T], *names: str, **strategies: st.SearchStrategy[Any]
) -> st.SearchStrategy[T]:
    """Instances of a choice type with exactly one field set, among ``names`` (all if none).

    ``strategies`` replaces the strategy of a field.
    """
    names = names or tuple(info.name for info in fields_of(model))
    return st.one_of(
        [
            strategies.get(name, value_of(model, name)).map(functools.partial(_only, model, name))
            for name in names
        ]
    )


def _only(model: type[T], name: str, value: Any) -> T:
    return model(**{name: value})


def identification(
    *options: str, **strategies: st.SearchStrategy[Any]
) -> st.SearchStrategy[common.Identification]:
    """Identifications with exactly one option, among ``options`` (field names; all if none).

    ``strategies`` replaces the strategy of an option, e.g. ``qr_code=...``.
    """
    return one_of_fields(common.Identification, *options, **strategies)


@override(common.Identification)
def _identification() -> st.SearchStrategy[common.Identification]:
    return identification()


def qr_code(*, hashed: bool | None = None) -> st.SearchStrategy[common.QRCodeIdentification]:
    """QR code identifications with a PIN or a HashedPIN (``hashed`` chooses; None: any)."""
    qr = common.QRCodeIdentification
    with_pin = from_model(qr, hashed_pin=st.none(), pin=value_of(qr, "pin"))
    with_hash = from_model(qr, hashed_pin=value_of(qr, "hashed_pin"), pin=st.none())
    if hashed is None:
        # Both are optional outside AuthorizeStart: the contract alone is valid too.
        return with_pin | with_hash | from_model(qr, hashed_pin=st.none(), pin=st.none())
    return with_hash if hashed else with_pin


@override(common.QRCodeIdentification)
def _qr_code() -> st.SearchStrategy[common.QRCodeIdentification]:
    return qr_code()


def unhashed_identification() -> st.SearchStrategy[common.Identification]:
    """Identifications for a CPO's CDR or notification: a QR code never with a HashedPIN
    (spec: HashedPIN "can be provided only when uploading Authentication data")."""
    qr = common.QRCodeIdentification
    contract_alone = from_model(qr, hashed_pin=st.none(), pin=st.none())
    return identification(qr_code=qr_code(hashed=False) | contract_alone)


# Spec: "The option RFIDIdentification MUST not be used in the eRoamingAuthorization process".
_AUTHORIZATION_OPTIONS = ("rfid_mifare_family", "qr_code", "plug_and_charge", "remote")


@override(authorization.AuthorizeStart)
def _authorize_start() -> st.SearchStrategy[authorization.AuthorizeStart]:
    # Spec: AuthorizeStart always carries the PIN in clear text, never a HashedPIN.
    return from_model(
        authorization.AuthorizeStart,
        identification=identification(*_AUTHORIZATION_OPTIONS, qr_code=qr_code(hashed=False)),
    )


@override(authorization.AuthorizeStop)
def _authorize_stop() -> st.SearchStrategy[authorization.AuthorizeStop]:
    # Spec: in authorization requests the PIN is mandatory and HashedPIN null.
    return from_model(
        authorization.AuthorizeStop,
        identification=identification(*_AUTHORIZATION_OPTIONS, qr_code=qr_code(hashed=False)),
    )


@override(remote.AuthorizeRemoteStart)
def _authorize_remote_start() -> st.SearchStrategy[remote.AuthorizeRemoteStart]:
    return from_model(remote.AuthorizeRemoteStart, identification=identification("remote"))


@override(cdr.ChargeDetailRecord)
def _charge_detail_record() -> st.SearchStrategy[cdr.ChargeDetailRecord]:
    @st.composite
    def build(draw: st.DrawFn) -> cdr.ChargeDetailRecord:
        model = cdr.ChargeDetailRecord
        fixed = {
            **_session_times(draw),
            **_energy(draw, model, "consumed_energy", consumed_optional=False),
        }
        return draw(from_model(
            model, identification=unhashed_identification(),
            **{k: st.just(v) for k, v in fixed.items()},
        ))

    return build()


def _typed(model: type[T], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[T]:
    # Each notification model accepts only its own Type; a CPO's identification carries no
    # HashedPIN.
    fields.setdefault("identification", st.none() | unhashed_identification())
    return from_model(model, type=st.just(model.TYPE), **fields)  # type: ignore[attr-defined]


@override(notifications.ChargingNotificationStart)
def _notification_start() -> st.SearchStrategy[notifications.ChargingNotificationStart]:
    model = notifications.ChargingNotificationStart

    @st.composite
    def build(draw: st.DrawFn) -> notifications.ChargingNotificationStart:
        # The session (optional here) starts no later than the charging.
        times = _session_times(draw, "session_start")
        return draw(_typed(
            model,
            session_start=st.just(times["session_start"]),
            charging_start=st.just(times["charging_start"]),
        ))

    return build()


@override(notifications.ChargingNotificationError)
def _notification_error() -> st.SearchStrategy[notifications.ChargingNotificationError]:
    return _typed(notifications.ChargingNotificationError)


@override(notifications.ChargingNotificationProgress)
def _notification_progress() -> st.SearchStrategy[notifications.ChargingNotificationProgress]:
    model = notifications.ChargingNotificationProgress

    @st.composite
    def build(draw: st.DrawFn) -> notifications.ChargingNotificationProgress:
        times = _session_times(draw, "session_start")
        start, occurred = times["charging_start"], times["charging_end"]
        assert start is not None
        assert occurred is not None
        # Spec: ChargingDuration is EventOccurred - ChargingStart in milliseconds; at least
        # one of it and ConsumedEnergyProgress is given.
        duration_ms = (occurred - start) // timedelta(milliseconds=1)
        which = draw(st.sampled_from(["duration", "energy", "both"]))
        energy = value_of(model, "consumed_energy_progress")
        return draw(
            _typed(
                model,
                session_start=st.just(times["session_start"]),
                charging_start=st.just(start),
                event_occurred=st.just(occurred),
                charging_duration=st.just(None if which == "energy" else duration_ms),
                consumed_energy_progress=st.none() if which == "duration" else energy,
            )
        )

    return build()


@override(notifications.ChargingNotificationEnd)
def _notification_end() -> st.SearchStrategy[notifications.ChargingNotificationEnd]:
    model = notifications.ChargingNotificationEnd

    @st.composite
    def build(draw: st.DrawFn) -> notifications.ChargingNotificationEnd:
        fixed = {
            **_session_times(draw, "session_start", "charging_start", "session_end"),
            **_energy(draw, model, "consumed_energy", consumed_optional=True),
        }
        return draw(_typed(model, **{k: st.just(v) for k, v in fixed.items()}))

    return build()


@override(evse.GeoCoordinates)
def _geo_coordinates() -> st.SearchStrategy[evse.GeoCoordinates]:
    # Spec: GeoCoordinatesType, exactly one of the three formats.
    return one_of_fields(evse.GeoCoordinates)


def degrees(limit: int) -> st.SearchStrategy[str]:
    """Decimal degrees within +-``limit`` (WGS84), written as the spec's pattern wants."""
    return st.builds(
        lambda value, places: f"{value:.{places}f}",
        st.decimals(min_value=-limit, max_value=limit, places=6, allow_nan=False,
                    allow_infinity=False),
        st.integers(1, 6),
    )


def degrees_minutes_seconds(limit: int) -> st.SearchStrategy[str]:
    """Degrees, minutes and seconds within +-``limit``, e.g. 9°21'39.32''."""
    return st.builds(
        lambda sign, d, m, s, space: f"{sign}{d}°{space}{m}'{space}{s:.2f}''",
        st.sampled_from(["", "-"]),
        st.integers(0, limit - 1),
        st.integers(0, 59),
        st.decimals(min_value=0, max_value=Decimal("59.99"), places=2),
        st.sampled_from(["", " "]),
    )


@override(evse.GeoCoordinatesDecimalDegree)
def _decimal_degree() -> st.SearchStrategy[evse.GeoCoordinatesDecimalDegree]:
    return st.builds(evse.GeoCoordinatesDecimalDegree, longitude=degrees(180),
                     latitude=degrees(90))


@override(evse.GeoCoordinatesGoogle)
def _google() -> st.SearchStrategy[evse.GeoCoordinatesGoogle]:
    # "latitude longitude", separated by a space (or a comma, with or without spaces).
    return st.builds(
        lambda lat, sep, lon: evse.GeoCoordinatesGoogle(coordinates=f"{lat}{sep}{lon}"),
        degrees(90), st.sampled_from([" ", ",", ", "]), degrees(180),
    )


@override(evse.GeoCoordinatesDegreeMinuteSeconds)
def _degree_minute_seconds() -> st.SearchStrategy[evse.GeoCoordinatesDegreeMinuteSeconds]:
    return st.builds(evse.GeoCoordinatesDegreeMinuteSeconds,
                     longitude=degrees_minutes_seconds(180),
                     latitude=degrees_minutes_seconds(90))


@override(evse.EvseDataRecord)
def _evse_data_record() -> st.SearchStrategy[evse.EvseDataRecord]:
    model = evse.EvseDataRecord
    payment = evse.PaymentOption
    # Spec: "No Payment" cannot be combined with another payment option.
    others = [p for p in payment if p is not payment.NO_PAYMENT]
    payment_options = st.just([payment.NO_PAYMENT]) | st.lists(
        st.sampled_from(others), max_size=LIST_MAX
    )
    opening_times = st.lists(from_model(evse.OpeningTimes), min_size=1, max_size=LIST_MAX)

    @st.composite
    def build(draw: st.DrawFn) -> evse.EvseDataRecord:
        # Spec: OpeningTimes is mandatory when the EVSE is not open around the clock.
        open_24_hours = draw(st.booleans())
        times = st.none() | opening_times if open_24_hours else opening_times
        # Spec: RenewableEnergy is true only where no grey energy is used.
        renewable = draw(st.booleans())
        green = [e for e in evse.EnergyType if e not in evse.GREY_ENERGY]
        source = from_model(evse.EnergySource, energy=st.none() | st.sampled_from(green))
        sources = st.none() | st.lists(source, max_size=LIST_MAX) if renewable else st.none() | (
            st.lists(from_model(evse.EnergySource), max_size=LIST_MAX))
        return draw(
            from_model(
                model,
                is_open_24_hours=st.just(open_24_hours),
                opening_times=times,
                payment_options=payment_options,
                renewable_energy=st.just(renewable),
                energy_source=sources,
            )
        )

    return build()


@override(pricing.PricingProductData)
def _pricing_product_data() -> st.SearchStrategy[pricing.PricingProductData]:
    # Spec: a ProductID is unique among an operator's products.
    model = pricing.PricingProductData
    info = _info(model, "pricing_product_data_records")
    records = st.lists(
        from_model(pricing.PricingProductDataRecord),
        min_size=info.rule.min_items or 0,
        max_size=max(info.rule.min_items or 0, LIST_MAX),
        unique_by=lambda r: r.product_id,
    )
    return from_model(model, pricing_product_data_records=records)
