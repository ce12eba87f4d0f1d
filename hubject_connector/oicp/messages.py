"""The message registry: every top-level OICP message model, by its message name.

The operation table (``operations.py``) names its request and answer bodies by message name
("eRoamingPushEvseData", "eRoamingAcknowledgement"); this module turns such a name into the
model class and decodes a body by name, so the client, the inbound server and the simulator
never keep their own lists.

Two names need care:

- The answer is spelled ``eRoamingAcknowledgement`` in the text spec and
  ``eRoamingAcknowledgment`` in the OpenAPI: both name ``Acknowledgement``.
- ``eRoamingChargingNotification`` (the notifications path's body) is four models told apart
  by ``Type``. The OpenAPI's ``oneOf`` cannot tell them apart (a valid Progress or End also
  matches Start), so such a body is dispatched on ``Type`` by
  ``notifications.decode_notification``, never by trying the schemas in turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from hubject_connector.oicp import (
    authorization,
    cdr,
    codec,
    common,
    evse,
    notifications,
    pricing,
    remote,
)
from hubject_connector.oicp.operations import Operation

#: Every top-level message model; each has ``OICP_NAME``.
_MODELS: Final[tuple[type, ...]] = (
    common.Acknowledgement,
    evse.PushEvseData,
    evse.PushEvseStatus,
    pricing.PushPricingProductData,
    pricing.PushEVSEPricing,
    authorization.AuthorizeStart,
    authorization.AuthorizeStop,
    authorization.AuthorizationStart,
    authorization.AuthorizationStop,
    cdr.ChargeDetailRecord,
    notifications.ChargingNotificationStart,
    notifications.ChargingNotificationProgress,
    notifications.ChargingNotificationEnd,
    notifications.ChargingNotificationError,
    remote.AuthorizeRemoteStart,
    remote.AuthorizeRemoteStop,
    remote.AuthorizeRemoteReservationStart,
    remote.AuthorizeRemoteReservationStop,
)

#: The OpenAPI's spelling of the answer (the text spec writes "eRoamingAcknowledgement").
ACKNOWLEDGMENT_OPENAPI_NAME: Final = "eRoamingAcknowledgment"

#: The notifications path's body: one of four models, chosen by its ``Type``.
NOTIFICATION_MESSAGE: Final = notifications.NOTIFICATION_MESSAGE


def _registry() -> dict[str, type]:
    table: dict[str, type] = {}
    for model in _MODELS:
        name = model.OICP_NAME  # type: ignore[attr-defined]
        if name in table:  # pragma: no cover - a programming error caught at import
            raise RuntimeError(f"two message models are called {name!r}")
        table[name] = model
    table[ACKNOWLEDGMENT_OPENAPI_NAME] = common.Acknowledgement
    return table


#: Message name → model class. Holds both spellings of the acknowledgement and the four
#: notification models under their own names; ``eRoamingChargingNotification`` is not a
#: single class (see ``message_classes``).
MESSAGES: Final[Mapping[str, type]] = MappingProxyType(_registry())

#: Names that stand for several models, with the models they may decode to.
_FAMILIES: Final[Mapping[str, tuple[type, ...]]] = MappingProxyType(
    {NOTIFICATION_MESSAGE: tuple(notifications.NOTIFICATION_CLASSES.values())}
)


def message_names() -> list[str]:
    """Every name ``decode_message`` accepts, sorted (``eRoamingChargingNotification`` too)."""
    return sorted([*MESSAGES, *_FAMILIES])


def message_classes(name: str) -> tuple[type, ...]:
    """Every model a body called ``name`` may decode to: one, or four for notifications."""
    if name in _FAMILIES:
        return _FAMILIES[name]
    return (message_class(name),)


def message_class(name: str) -> type:
    """The model class of the message called ``name``.

    Raises ``KeyError`` listing the known names when ``name`` is unknown, or when it names
    several models (``eRoamingChargingNotification``: use ``message_classes`` or
    ``decode_message``, which dispatches on ``Type``).
    """
    if name in _FAMILIES:
        members = ", ".join(m.OICP_NAME for m in _FAMILIES[name])  # type: ignore[attr-defined]
        raise KeyError(
            f"{name!r} is one of several models told apart by Type ({members}): "
            "use message_classes() or decode_message()"
        )
    try:
        return MESSAGES[name]
    except KeyError:
        known = ", ".join(message_names())
        raise KeyError(f"unknown OICP message {name!r}; known: {known}") from None


def decode_message(name: str, body: bytes | str | Mapping[str, Any]) -> object:
    """Decode a body (JSON bytes or text, or an already parsed object) as message ``name``.

    Raises ``OicpValidationError`` naming each broken rule, ``KeyError`` for an unknown name.
    A notification body is dispatched on its ``Type``.
    """
    # The name is checked before the body is parsed: an unknown name is a KeyError even
    # when the body is not JSON.
    model = None if name == NOTIFICATION_MESSAGE else message_class(name)
    payload = codec.parse_json(body) if isinstance(body, bytes | str) else body
    if model is None:
        return notifications.decode_notification(payload)
    return codec.load(model, payload)


def request_classes(operation: Operation) -> tuple[type, ...]:
    """The models an operation's request body may decode to (four for notifications)."""
    return message_classes(operation.request)


def request_class(operation: Operation) -> type:
    """The model of an operation's request body.

    Raises ``KeyError`` for the notifications operation, whose body is one of four models:
    use ``request_classes`` there.
    """
    return message_class(operation.request)


def response_class(operation: Operation) -> type:
    """The model of an operation's answer body."""
    return message_class(operation.response)
