"""Backend to Hubject: the bus contract's ``data`` as OICP 2.3 request models, and back.

The flows hand in the ``data`` of a message that passed the contract (docs/contract.md) and
get the OICP model to send: EVSE data and status pushes, authorization requests, charging
notifications, CDRs and pricing pushes. The other way, ``authorization_reply`` turns
Hubject's answer to an authorization into the reply ``data`` for the backend.

Pure: no I/O, no event loop. What the OICP model refuses (a rule the contract cannot say
in JSON Schema, such as ``consumed_energy = meter_value_end - meter_value_start``) raises
``TranslationError``, whose issues point at the contract field the backend sent
(``/data/consumed_energy``), with the rule in the contract's words.

What the backend may leave out comes from the configuration through ``Context``: the
OperatorID, the OperatorName (mandatory in an EVSE data push) and the charge points' time
zone, to which times given in UTC are moved (times.py; a message's ``time_zone`` wins).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from hubject_connector.bus.contract import ContractIssue, MessageType
from hubject_connector.config import HubjectConfig
from hubject_connector.errors import ConfigError
from hubject_connector.oicp import codec
from hubject_connector.oicp.authorization import (
    AuthorizationStart,
    AuthorizationStop,
    AuthorizeStart,
    AuthorizeStop,
)
from hubject_connector.oicp.cdr import ChargeDetailRecord
from hubject_connector.oicp.evse import (
    ActionType,
    EvseDataRecord,
    OperatorEvseData,
    OperatorEvseStatus,
    PushEvseData,
    PushEvseStatus,
)
from hubject_connector.oicp.notifications import (
    ChargingNotification,
    ChargingNotificationEnd,
    ChargingNotificationError,
    ChargingNotificationProgress,
    ChargingNotificationStart,
)
from hubject_connector.oicp.pricing import (
    PricingProductData,
    PushEVSEPricing,
    PushPricingProductData,
)
from hubject_connector.translate.errors import TranslationError
from hubject_connector.translate.payload import Payload, identification_data
from hubject_connector.translate.times import zone_named

__all__ = [
    "Context",
    "TranslationError",
    "authorization_reply",
    "authorize_start",
    "authorize_stop",
    "charge_detail_record",
    "evse_pricing",
    "evse_record",
    "notification",
    "operator_name_of",
    "operator_of",
    "pricing_products",
    "push_evse_data",
    "push_evse_status",
    "zone_of",
]

#: The OICP model of each notification message type.
NOTIFICATION_MODELS: Final[Mapping[MessageType, type[ChargingNotification]]] = {
    MessageType.NOTIFICATION_START: ChargingNotificationStart,
    MessageType.NOTIFICATION_PROGRESS: ChargingNotificationProgress,
    MessageType.NOTIFICATION_END: ChargingNotificationEnd,
    MessageType.NOTIFICATION_ERROR: ChargingNotificationError,
}


@dataclass(frozen=True, slots=True)
class Context:
    """What the configuration adds to the backend's data.

    ``operator_id`` and ``operator_name`` are used where a message leaves its own out;
    ``zone`` is the charge points' time zone for times given in UTC.
    """

    operator_id: str
    operator_name: str
    zone: zoneinfo.ZoneInfo
    sub_operator_ids: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, hubject: HubjectConfig) -> Context:
        """The context of the ``[hubject]`` settings. Raises ``ConfigError`` for a bad zone."""
        try:
            zone = zone_named(hubject.time_zone)
        except ValueError as exc:
            raise ConfigError("hubject.time_zone", str(exc)) from None
        return cls(
            operator_id=hubject.operator_id,
            operator_name=hubject.operator_name,
            zone=zone,
            sub_operator_ids=tuple(hubject.sub_operator_ids),
        )


# --- what the configuration fills in -----------------------------------------------------


def operator_of(data: Mapping[str, Any], ctx: Context) -> str:
    """The OperatorID a message is pushed under: its own ``operator_id``, else the configured.

    Raises ``TranslationError`` on ``/data/operator_id`` when neither is given.
    """
    given = data.get("operator_id")
    if isinstance(given, str) and given:
        return given
    if ctx.operator_id:
        return ctx.operator_id
    raise TranslationError.at(
        "/data/operator_id",
        "is required: the message names no operator_id and [hubject] operator_id is not set",
    )


def operator_name_of(data: Mapping[str, Any], ctx: Context) -> str:
    """The OperatorName for a push: the message's ``operator_name``, else the configured one.

    Empty when neither is given; ``push_evse_data``, where OICP requires the name, refuses
    that, while status and pricing pushes leave the optional name out.
    """
    given = data.get("operator_name")
    if isinstance(given, str) and given:
        return given
    return ctx.operator_name


def zone_of(data: Mapping[str, Any], ctx: Context) -> zoneinfo.ZoneInfo:
    """The time zone for a message's times: its ``time_zone``, else the configured one.

    Raises ``TranslationError`` on ``/data/time_zone`` for a name that is no IANA zone.
    """
    name = data.get("time_zone")
    if name is None:
        return ctx.zone
    try:
        return zone_named(name)
    except ValueError as exc:
        raise TranslationError.at("/data/time_zone", str(exc)) from None


def _action(action: str) -> ActionType:
    try:
        return ActionType(action)
    except ValueError:
        allowed = ", ".join(a.value for a in ActionType)
        raise ValueError(f"action {action!r} is not an OICP ActionType ({allowed})") from None


# --- EVSE data and status ----------------------------------------------------------------


def evse_record(
    evse: Mapping[str, Any], ctx: Context, *, at: str = "/data/evse"
) -> EvseDataRecord:
    """The OICP ``EvseDataRecord`` of a contract EVSE record (``evse.upsert.v1`` ``evse``).

    ``at`` is where the record sits in its message, for the error pointers:
    ``"/data/evse"`` in an upsert or delete, ``f"/data/evses/{i}"`` in a full load.
    Mapped as documented: ``geo_coordinates`` and ``geo_charging_point_entrance``
    (latitude/longitude) become OICP ``DecimalDegree`` coordinates, ``opening_times[].periods``
    OICP ``Period``, every other field its OICP namesake. Raises ``TranslationError``.
    """
    payload = Payload(ctx.zone, root=at)
    body = payload.model(EvseDataRecord, evse, at, "")
    return payload.load(EvseDataRecord, body)


def push_evse_data(
    action: str, operator_id: str, operator_name: str, records: Sequence[EvseDataRecord]
) -> PushEvseData:
    """``eRoamingPushEvseData`` of ``records`` (from ``evse_record``) under one operator.

    ``action`` is an OICP ActionType value ("insert", "update", "delete", "fullLoad");
    another raises ``ValueError`` (a caller's mistake, not the data's). OICP requires the
    OperatorName here: an empty one raises ``TranslationError`` on ``/data/operator_name``
    (pass ``operator_name_of(data, ctx)``); a bad OperatorID one on ``/data/operator_id``.
    """
    kind = _action(action)
    if not operator_name:
        raise TranslationError.at(
            "/data/operator_name",
            "is required in an EVSE data push: the message names no operator_name and "
            "[hubject] operator_name is not set",
        )
    payload = Payload(zoneinfo.ZoneInfo("UTC"))
    payload.note("/OperatorID", "/data/operator_id")
    payload.note("/OperatorName", "/data/operator_name")
    # The records are models already checked by evse_record: only the operator is left.
    payload.load(
        OperatorEvseData,
        {"OperatorID": operator_id, "OperatorName": operator_name, "EvseDataRecord": []},
    )
    return PushEvseData(
        action_type=kind,
        operator_evse_data=OperatorEvseData(
            operator_id=operator_id, operator_name=operator_name, evse_data_records=list(records)
        ),
    )


_STATUS_ENTRY: Final = re.compile(r"/EvseStatusRecord/(?P<index>[0-9]+)(?P<rest>/.*)?")


def push_evse_status(
    action: str, operator_id: str, operator_name: str, statuses: Sequence[tuple[str, str]]
) -> PushEvseStatus:
    """``eRoamingPushEvseStatus`` of ``(EvseID, status)`` pairs under one operator.

    The pairs are ``evse.status.v1``'s ``evse_id`` and ``status``, coalesced from many
    messages: an issue points at ``/data/evse_id`` or ``/data/status`` and says which
    entry of the batch it is. ``operator_name`` is optional in OICP here: empty leaves it
    out. ``action`` as in ``push_evse_data``. Raises ``TranslationError``.
    """
    kind = _action(action)
    body: dict[str, Any] = {
        "OperatorID": operator_id,
        "EvseStatusRecord": [
            {"EvseID": evse_id, "EvseStatus": status} for evse_id, status in statuses
        ],
    }
    if operator_name:
        body["OperatorName"] = operator_name
    try:
        operator = codec.load(OperatorEvseStatus, body)
    except codec.OicpValidationError as exc:
        raise TranslationError(_status_issue(issue, statuses) for issue in exc.issues) from exc
    return PushEvseStatus(action_type=kind, operator_evse_status=operator)


def _status_issue(issue: codec.Issue, statuses: Sequence[tuple[str, str]]) -> ContractIssue:
    if issue.pointer == "/OperatorID":
        return ContractIssue("/data/operator_id", issue.message)
    if issue.pointer == "/OperatorName":
        return ContractIssue("/data/operator_name", issue.message)
    match = _STATUS_ENTRY.fullmatch(issue.pointer)
    if match is None:
        return ContractIssue("/data", issue.message)
    index = int(match["index"])
    field = "/data/status" if match["rest"] == "/EvseStatus" else "/data/evse_id"
    evse_id = statuses[index][0] if index < len(statuses) else "?"
    return ContractIssue(field, f"{issue.message} (entry {index} of the batch, EvseID {evse_id!r})")


# --- authorization -----------------------------------------------------------------------


def authorize_start(data: Mapping[str, Any], ctx: Context) -> AuthorizeStart:
    """``eRoamingAuthorizeStart`` of ``authorization.start.request.v1`` data.

    The identification's ``kind`` picks the OICP option; ``operator_id`` defaults to the
    configured one. Raises ``TranslationError``.
    """
    payload = Payload(ctx.zone)
    body = payload.model(
        AuthorizeStart,
        data,
        "/data",
        "",
        fixed={"operator_id": operator_of(data, ctx)},
        skip=("operator_id",),
    )
    return payload.load(AuthorizeStart, body)


def authorize_stop(data: Mapping[str, Any], ctx: Context) -> AuthorizeStop:
    """``eRoamingAuthorizeStop`` of ``authorization.stop.request.v1`` data.

    As ``authorize_start``; ``session_id`` is mandatory here. Raises ``TranslationError``.
    """
    payload = Payload(ctx.zone)
    body = payload.model(
        AuthorizeStop,
        data,
        "/data",
        "",
        fixed={"operator_id": operator_of(data, ctx)},
        skip=("operator_id",),
    )
    return payload.load(AuthorizeStop, body)


def authorization_reply(answer: AuthorizationStart | AuthorizationStop) -> dict[str, Any]:
    """The ``data`` of ``authorization.start.reply.v1`` / ``.stop.reply.v1`` for Hubject's answer.

    Hubject's ``StatusCode`` is spread into ``status_code``, ``status_description`` and
    ``additional_info``; ``authorization_stop_identifications`` (start only) get their
    contract ``kind``. Absent values and empty texts are left out.
    """
    candidates: dict[str, Any] = {
        "authorization_status": answer.authorization_status.value,
        "session_id": answer.session_id,
        "cpo_partner_session_id": answer.cpo_partner_session_id,
        "emp_partner_session_id": answer.emp_partner_session_id,
        "provider_id": answer.provider_id,
        "status_code": answer.status_code.code,
        "status_description": answer.status_code.description,
        "additional_info": answer.status_code.additional_info,
    }
    data = {key: value for key, value in candidates.items() if value}
    if isinstance(answer, AuthorizationStart) and answer.authorization_stop_identifications:
        data["authorization_stop_identifications"] = [
            identification_data(identification)
            for identification in answer.authorization_stop_identifications
            if identification.options()
        ]
    return data


# --- sessions: notifications and the CDR -------------------------------------------------


def notification(
    message_type: MessageType, data: Mapping[str, Any], ctx: Context
) -> ChargingNotification:
    """The OICP charging notification of ``notification.{start,progress,end,error}.v1`` data.

    ``Type`` follows the message type; ``operator_id`` defaults to the configured one;
    ``charging_duration_ms`` is OICP's ``ChargingDuration``, ``meter_values_in_between``
    its ``MeterValueInBetween``. Times given in UTC get the local offset of ``time_zone``
    (else the configured zone). ``ValueError`` for a type that is no notification;
    ``TranslationError`` for data OICP refuses.
    """
    model = NOTIFICATION_MODELS.get(message_type)
    if model is None:
        raise ValueError(f"{message_type} is not a charging notification type")
    payload = Payload(zone_of(data, ctx))
    body = payload.model(
        model,
        data,
        "/data",
        "",
        fixed={"type": model.TYPE.value, "operator_id": operator_of(data, ctx)},
        skip=("operator_id", "time_zone"),
    )
    return payload.load(model, body)


def charge_detail_record(data: Mapping[str, Any], ctx: Context) -> ChargeDetailRecord:
    """``eRoamingChargeDetailRecord`` of ``cdr.v1`` data.

    ``operator_id`` is not part of the OICP record (it is the path's: ``operator_of``);
    ``meter_values_in_between`` becomes ``MeterValueInBetween``; energies stay ``Decimal``;
    times given in UTC get the local offset of ``time_zone`` (else the configured zone).
    Raises ``TranslationError``.
    """
    payload = Payload(zone_of(data, ctx))
    body = payload.model(ChargeDetailRecord, data, "/data", "", skip=("operator_id", "time_zone"))
    return payload.load(ChargeDetailRecord, body)


# --- pricing -----------------------------------------------------------------------------


def pricing_products(data: Mapping[str, Any], ctx: Context) -> PushPricingProductData:
    """``eRoamingPushPricingProductData`` of ``pricing.products.v1`` data.

    The contract flattens OICP's ``PricingProductData`` into ``data`` beside
    ``action_type``. ``operator_id`` and ``operator_name`` default to the configured ones
    (the name is optional in OICP here). Prices stay ``Decimal``. Raises ``TranslationError``.
    """
    payload = Payload(ctx.zone)
    payload.note("/ActionType", "/data/action_type")
    name = operator_name_of(data, ctx)
    products = payload.model(
        PricingProductData,
        data,
        "/data",
        "/PricingProductData",
        fixed={"operator_id": operator_of(data, ctx), "operator_name": name or None},
        skip=("action_type", "operator_id", "operator_name"),
    )
    body = {"PricingProductData": products}
    if "action_type" in data:
        body["ActionType"] = data["action_type"]
    return payload.load(PushPricingProductData, body)


def evse_pricing(data: Mapping[str, Any], ctx: Context) -> PushEVSEPricing:
    """``eRoamingPushEVSEPricing`` of ``pricing.evse.v1`` data.

    ``operator_id`` is the path's (``operator_of``), not part of the OICP body.
    Raises ``TranslationError``.
    """
    payload = Payload(ctx.zone)
    body = payload.model(PushEVSEPricing, data, "/data", "", skip=("operator_id",))
    return payload.load(PushEVSEPricing, body)
