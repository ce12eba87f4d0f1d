"""Declarative OICP models.

A message type is a frozen dataclass whose fields say, through ``wire(...)``, their JSON
name and their rules (length limit, ID pattern, decimal places, ...). The marshmallow schema
that reads and writes it is derived from that one declaration, so a rule is written once
and the schema, the error messages and the test data generators cannot drift apart.

Why rules live in code: the OpenAPI writes string length limits as ``maximum``, which a
JSON-schema validator ignores, and several of its patterns are looser than the text spec.

Supported field types: ``str``, ``int``, ``bool``, ``Decimal``, ``datetime``, ``StrEnum``
subclasses, nested models, ``list[...]`` of those, and ``X | None`` for optional fields.
A model may define ``oicp_issues(self)`` for rules across fields (e.g. exactly one
identification option); it returns ``(json_key_or_empty, message)`` pairs, where a key
``"A/B"`` points into a part. The rules and their sources are listed in ``conformance``.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar, Final, Protocol

import marshmallow
from marshmallow import EXCLUDE, Schema, fields, post_dump, post_load, pre_load

from hubject_connector.oicp import patterns

_MISSING: Final = dataclasses.MISSING

#: JSON names of fields that hold personal data or secrets: left out of model reprs.
PRIVATE_KEYS: Final = frozenset(
    {"UID", "EvcoID", "PrintedNumber", "PIN", "HashedPIN", "LegacyHashData", "Salt", "Value"}
)
#: Patterns whose values are personal data or secrets, whatever the field's name.
PRIVATE_PATTERNS: Final = frozenset({"UID", "EvcoID", "HashedPIN"})


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """What the wire says about one field: its JSON name and the rules it must obey."""

    key: str
    aliases: tuple[str, ...] = ()
    max_length: int | None = None
    min_length: int | None = None
    pattern: str | None = None
    places: int | None = None
    minimum: int | Decimal | None = None
    maximum: int | Decimal | None = None
    min_items: int | None = None
    max_items: int | None = None


def wire(
    key: str,
    *,
    default: Any = _MISSING,
    aliases: tuple[str, ...] = (),
    max_length: int | None = None,
    min_length: int | None = None,
    pattern: str | None = None,
    places: int | None = None,
    minimum: int | Decimal | None = None,
    maximum: int | Decimal | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
) -> Any:
    """Declare a model field: ``key`` is its JSON name as the data-type table writes it.

    A field without ``default`` is mandatory. ``aliases`` are other spellings found in
    Hubject's material, accepted on read and never written. ``pattern`` names an entry of
    ``patterns.PATTERNS``. ``places`` caps decimal places (energy: 3).
    """
    if pattern is not None and pattern not in patterns.PATTERNS:
        raise KeyError(f"unknown pattern name {pattern!r}")
    rule = Rule(
        key=key,
        aliases=aliases,
        max_length=max_length,
        min_length=min_length,
        pattern=pattern,
        places=places,
        minimum=minimum,
        maximum=maximum,
        min_items=min_items,
        max_items=max_items,
    )
    metadata = {"oicp": rule}
    # Card UIDs, contract IDs, PINs and hashes stay out of the repr, and so out of debug
    # logs, tracebacks and error reports that print a model.
    shown = key not in PRIVATE_KEYS and pattern not in PRIVATE_PATTERNS
    if default is _MISSING:
        return dataclasses.field(metadata=metadata, repr=shown)
    return dataclasses.field(default=default, metadata=metadata, repr=shown)


class OicpModel(Protocol):
    """What every model class offers (structurally: any dataclass built with ``wire``)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]


def rule_of(field: dataclasses.Field[Any]) -> Rule:
    """The ``Rule`` declared on a model field."""
    rule = field.metadata.get("oicp")
    if not isinstance(rule, Rule):
        raise TypeError(f"field {field.name!r} is not declared with wire()")
    return rule


@dataclasses.dataclass(frozen=True, slots=True)
class FieldInfo:
    """A model field with its resolved type, as the schema builder and generators see it."""

    name: str
    rule: Rule
    #: The type without ``| None`` and without ``list[...]``.
    base: Any
    optional: bool
    is_list: bool
    required: bool


_FIELDS: dict[type, tuple[FieldInfo, ...]] = {}
_SCHEMAS: dict[type, type[ModelSchema]] = {}
_SCHEMA_INSTANCES: dict[type, ModelSchema] = {}


def fields_of(model: type) -> tuple[FieldInfo, ...]:
    """The fields of a model class, types resolved (once, then cached)."""
    cached = _FIELDS.get(model)
    if cached is not None:
        return cached
    if not dataclasses.is_dataclass(model):
        raise TypeError(f"{model!r} is not a model dataclass")
    hints = typing.get_type_hints(model)
    infos = []
    for f in dataclasses.fields(model):
        tp = hints[f.name]
        optional = False
        if _is_union(tp):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                raise TypeError(f"{model.__name__}.{f.name}: unions of models are not supported")
            optional = True
            tp = args[0]
        is_list = typing.get_origin(tp) is list
        if is_list:
            (tp,) = typing.get_args(tp)
        required = f.default is _MISSING and f.default_factory is _MISSING
        infos.append(FieldInfo(f.name, rule_of(f), tp, optional, is_list, required))
    _FIELDS[model] = result = tuple(infos)
    return result


def given_keys(instance: Any) -> list[str]:
    """The JSON names of a model instance's fields that are set (not ``None``), in order."""
    return [
        info.rule.key
        for info in fields_of(type(instance))
        if getattr(instance, info.name) is not None
    ]


def one_of_issues(instance: Any, what: str) -> list[tuple[str, str]]:
    """An ``oicp_issues`` pair unless exactly one field of a choice type is set.

    For the spec's choice types (IdentificationType, GeoCoordinatesType), whose fields are
    all optional: ``what`` completes "exactly one ... must be given".
    """
    chosen = given_keys(instance)
    if len(chosen) != 1:
        got = ", ".join(chosen) if chosen else "none"
        return [("", f"exactly one {what} must be given (got {got})")]
    return []


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


# --- marshmallow fields with OICP's rules and error wording ------------------------------


class _Pattern(marshmallow.validate.Validator):
    def __init__(self, name: str) -> None:
        self.name = name
        self.regex = patterns.compiled(name)

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise marshmallow.ValidationError(f"does not match the {self.name} pattern")
        return value


class _Length(marshmallow.validate.Validator):
    def __init__(self, minimum: int | None, maximum: int | None) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def __call__(self, value: Any) -> Any:
        if self.maximum is not None and len(value) > self.maximum:
            raise marshmallow.ValidationError(
                f"is {len(value)} characters long, over the limit of {self.maximum}"
            )
        if self.minimum is not None and len(value) < self.minimum:
            raise marshmallow.ValidationError(
                f"is {len(value)} characters long, under the minimum of {self.minimum}"
            )
        return value


class _Items(marshmallow.validate.Validator):
    def __init__(self, minimum: int | None, maximum: int | None) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def __call__(self, value: Any) -> Any:
        if self.minimum is not None and len(value) < self.minimum:
            raise marshmallow.ValidationError(
                f"has {len(value)} items, needs at least {self.minimum}"
            )
        if self.maximum is not None and len(value) > self.maximum:
            raise marshmallow.ValidationError(
                f"has {len(value)} items, allows at most {self.maximum}"
            )
        return value


class _Range(marshmallow.validate.Validator):
    def __init__(self, minimum: int | Decimal | None, maximum: int | Decimal | None) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def __call__(self, value: Any) -> Any:
        if self.minimum is not None and value < self.minimum:
            raise marshmallow.ValidationError(f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise marshmallow.ValidationError(f"must be at most {self.maximum}")
        return value


class OicpString(fields.String):
    """A JSON string; anything else is refused rather than converted."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise marshmallow.ValidationError("must be a string")
        return value


#: Digits an integer field holds unless its maximum says fewer (fits a signed 64-bit int).
INTEGER_DIGITS: Final = 18
#: Digits before the decimal point a decimal field holds unless its maximum says fewer.
DECIMAL_INTEGER_DIGITS: Final = 15
#: Decimal places a decimal field holds unless its rule says fewer.
DECIMAL_PLACES: Final = 30


def _digits_of(maximum: int | Decimal | None, default: int) -> int:
    """Digits before the point that a field with this maximum can need."""
    if maximum is None:
        return default
    return max(1, Decimal(maximum).copy_abs().adjusted() + 1)


def _too_large(
    digits: int, given: int, maximum: int | Decimal | None
) -> marshmallow.ValidationError:
    if maximum is not None:
        # The range rule's own wording: the number is simply above the maximum.
        return marshmallow.ValidationError(f"must be at most {maximum}")
    return marshmallow.ValidationError(
        f"has {given} digits before the decimal point, more than this field holds "
        f"(at most {digits})"
    )


class OicpInteger(fields.Field[Any]):
    """A JSON integer (not a boolean, not a fraction) of at most ``digits`` digits.

    The size is checked before any conversion: ``1e1000000`` is refused at once instead
    of being expanded into a million-digit integer.
    """

    def __init__(self, maximum: int | Decimal | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.maximum = maximum
        self.digits = _digits_of(maximum, INTEGER_DIGITS)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
            raise marshmallow.ValidationError("must be an integer")
        if isinstance(value, int):
            if abs(value) >= 10**self.digits:
                raise _too_large(self.digits, len(str(abs(value))), self.maximum)
            return value
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite():
            raise marshmallow.ValidationError("must be an integer")
        if number and number.adjusted() >= self.digits:
            raise _too_large(self.digits, number.adjusted() + 1, self.maximum)
        if number != number.to_integral_value():
            raise marshmallow.ValidationError("must be an integer")
        return int(number)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


class OicpBoolean(fields.Field[Any]):
    """A JSON boolean; ``"true"`` or ``1`` are refused."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise marshmallow.ValidationError("must be true or false")
        return value

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


class OicpDecimal(fields.Field[Any]):
    """A JSON number kept as ``Decimal`` end to end, never a float.

    ``places`` caps the decimal places (energy: 3, OICP "DecimalType"; else 30), and
    ``maximum`` (else 15 digits) the digits before the point. Both are checked on the
    number as given, before anything expands it (a huge exponent would write out as a
    gigabyte).
    """

    def __init__(
        self, places: int | None = None, maximum: int | Decimal | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.places = places
        self.maximum = maximum
        self.digits = _digits_of(maximum, DECIMAL_INTEGER_DIGITS)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise marshmallow.ValidationError("must be a number")
        try:
            # repr() of a float is its shortest round-tripping text: 0.1 stays 0.1.
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - int/Decimal always convert
            raise marshmallow.ValidationError("must be a number") from exc
        if not number.is_finite():
            raise marshmallow.ValidationError("must be a finite number")
        if number and number.adjusted() >= self.digits:
            raise _too_large(self.digits, number.adjusted() + 1, self.maximum)
        places = DECIMAL_PLACES if self.places is None else self.places
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            raise marshmallow.ValidationError(f"has more than {places} decimal places")
        return number

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


# "YYYY-MM-DDThh:mm:ssTZD" with optional fractions; TZD is "Z" or "+hh:mm"/"-hh:mm".
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?P<frac>\.\d+)?(?P<tz>Z|[+-]\d{2}:\d{2})"
)


def parse_date_time(text: str) -> datetime:
    """Parse an OICP date-time, keeping its offset. Raises ``ValueError`` when malformed."""
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise ValueError(text)
    frac = match.group("frac")
    if frac and len(frac) > 7:
        # More than microseconds: Python keeps 6 digits; the rest is below its resolution.
        text = text[: match.start("frac")] + frac[:7] + text[match.end("frac") :]
    return datetime.fromisoformat(text)


def format_date_time(value: datetime) -> str:
    """Write a date-time with its own offset, and fractions only where it has them."""
    if value.tzinfo is None:
        raise ValueError("a date-time without an offset cannot be written")
    spec = "seconds"
    if value.microsecond:
        spec = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
    return value.isoformat(timespec=spec)


class OicpDateTime(fields.Field[Any]):
    """``YYYY-MM-DDThh:mm:ssTZD``: the offset is mandatory and kept; ``Z`` and fractions read."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise marshmallow.ValidationError("must be a date-time string")
        try:
            return parse_date_time(value)
        except ValueError as exc:
            raise marshmallow.ValidationError(
                "is not a date-time of the form YYYY-MM-DDThh:mm:ssTZD"
            ) from exc

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        return format_date_time(value)


class OicpEnum(fields.Field[Any]):
    """A ``StrEnum`` written as its value."""

    def __init__(self, enum: type[StrEnum], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.enum = enum

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> StrEnum:
        try:
            return self.enum(value)
        except ValueError as exc:
            allowed = ", ".join(m.value for m in self.enum)
            raise marshmallow.ValidationError(f"must be one of: {allowed}") from exc

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else str(value.value)


# --- schema derivation -------------------------------------------------------------------


class ModelSchema(Schema):
    """Base of every derived schema: alias spellings in, the model out, no nulls written."""

    __model__: ClassVar[type]
    __aliases__: ClassVar[Mapping[str, str]] = {}

    class Meta:
        # Hubject may add fields in a minor revision; unknown keys are not an error.
        unknown = EXCLUDE

    @pre_load
    def _canonical_spelling(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, Mapping) or not any(a in data for a in self.__aliases__):
            return data
        out = dict(data)
        for alias, key in self.__aliases__.items():
            if alias in out:
                value = out.pop(alias)
                out.setdefault(key, value)
        return out

    def handle_error(
        self, error: marshmallow.ValidationError, data: Any, *, many: bool, **kwargs: Any
    ) -> None:
        """Point errors at the spelling the sender used, so the pointer resolves in its payload."""
        messages = error.messages
        if not self.__aliases__ or not isinstance(data, Mapping) or not isinstance(messages, dict):
            return
        for alias, key in self.__aliases__.items():
            if alias in data and key not in data and key in messages:
                messages[alias] = messages.pop(key)

    @post_load
    def _build(self, data: dict[str, Any], **kwargs: Any) -> Any:
        instance = self.__model__(**data)
        check = getattr(instance, "oicp_issues", None)
        if check is not None:
            issues: dict[str, Any] = {}
            for key, message in check():
                _add_issue(issues, key, message)
            if issues:
                raise marshmallow.ValidationError(issues)
        return instance

    @post_dump
    def _drop_nulls(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {k: v for k, v in data.items() if v is not None}


def _add_issue(issues: dict[str, Any], key: str, message: str) -> None:
    """File ``message`` under ``key`` in marshmallow's error shape; ``"A/B"`` nests (B in A),
    so a rule of a message can point into one of its parts."""
    node = issues
    steps = key.split("/") if key else []
    for step in steps[:-1]:
        child = node.setdefault(step, {})
        if isinstance(child, list):
            child = node[step] = {"_schema": child}
        node = child
    last = steps[-1] if steps else "_schema"
    entry = node.setdefault(last, [])
    if isinstance(entry, dict):
        entry = entry.setdefault("_schema", [])
    entry.append(message)


def _field_for(info: FieldInfo) -> fields.Field[Any]:
    rule, base = info.rule, info.base
    validators: list[Any] = []
    inner: fields.Field[Any]
    if dataclasses.is_dataclass(base) and isinstance(base, type):
        inner = fields.Nested(schema_for(base))
    elif isinstance(base, type) and issubclass(base, StrEnum):
        inner = OicpEnum(base)
    elif base is str:
        inner = OicpString()
        if rule.pattern is not None:
            validators.append(_Pattern(rule.pattern))
        if rule.min_length is not None or rule.max_length is not None:
            validators.append(_Length(rule.min_length, rule.max_length))
    elif base is bool:
        inner = OicpBoolean()
    elif base is int:
        inner = OicpInteger(maximum=rule.maximum)
    elif base is Decimal:
        inner = OicpDecimal(places=rule.places, maximum=rule.maximum)
    elif base is datetime:
        inner = OicpDateTime()
    else:
        raise TypeError(f"field {info.name!r}: unsupported type {base!r}")
    if rule.minimum is not None or rule.maximum is not None:
        validators.append(_Range(rule.minimum, rule.maximum))
    if info.is_list:
        # Element rules apply to each element; item counts to the list.
        if validators:
            inner.validators = [*inner.validators, *validators]
        validators = []
        if rule.min_items is not None or rule.max_items is not None:
            validators.append(_Items(rule.min_items, rule.max_items))
        field: fields.Field[Any] = fields.List(inner)
    else:
        field = inner
    field.data_key = rule.key
    field.required = info.required
    # Hubject's own examples send ``null`` for absent optional values.
    field.allow_none = not info.required
    field.validators = [*field.validators, *validators]
    return field


def schema_for(model: type) -> type[ModelSchema]:
    """The marshmallow schema class derived from a model class (built once, then cached)."""
    cached = _SCHEMAS.get(model)
    if cached is not None:
        return cached
    attrs: dict[str, Any] = {"__model__": model}
    aliases: dict[str, str] = {}
    for info in fields_of(model):
        attrs[info.name] = _field_for(info)
        for alias in info.rule.aliases:
            aliases[alias] = info.rule.key
    attrs["__aliases__"] = aliases
    _SCHEMAS[model] = schema = type(f"{model.__name__}Schema", (ModelSchema,), attrs)
    return schema


def schema_instance(model: type) -> ModelSchema:
    """The shared instance of ``schema_for(model)`` that ``codec`` loads and dumps with.

    Building an instance (and, on its first load, its nested schemas) costs more than the
    load itself; a schema keeps no state between loads, so one instance serves every call.
    """
    instance = _SCHEMA_INSTANCES.get(model)
    if instance is None:
        instance = _SCHEMA_INSTANCES[model] = schema_for(model)()
    return instance
