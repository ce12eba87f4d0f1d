"""The models against the official OpenAPI, field by field.

For every message, walking the OpenAPI schema and the model together: every property the
OpenAPI names is a model field (under its name or a documented other spelling), every
mandatory property is mandatory, every enum has the same values, and every length limit of a
string, including those the OpenAPI writes as ``maximum`` (which a JSON-schema validator
ignores on strings), is the model's. Numeric ranges the OpenAPI gives are kept too.
Where the models knowingly differ, the difference and its reason are listed below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

import pytest

from hubject_connector.oicp import common, messages
from hubject_connector.oicp.model import FieldInfo, fields_of
from tests.unit.oicp_conformance.conftest import Spec

pytestmark = pytest.mark.spec

#: (model, JSON key) → why the model differs from the OpenAPI there.
KNOWN_DIFFERENCES: Final[Mapping[tuple[str, str], str]] = {
    ("PricingProductData", "PricingDefaultReferenceUnit"):
        "the OpenAPI leaves ReferenceUnit a free string; the text spec lists three values",
    ("PricingProductDataRecord", "ReferenceUnit"): "as PricingDefaultReferenceUnit",
    ("AdditionalReference", "AdditionalReferenceUnit"): "as PricingDefaultReferenceUnit",
    ("MeterValueInBetween", "meterValues"):
        "the list is the whole content of MeterValueInBetween: an empty object says nothing",
}


@dataclasses.dataclass(frozen=True)
class Pair:
    """A model field beside the OpenAPI property it reads (list items resolved)."""

    where: str
    model: type
    info: FieldInfo | None
    key: str
    prop: Mapping[str, Any] | None
    required_in_spec: bool


def _properties(spec: Spec, schema: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    node = spec.resolve(schema)
    props = dict(node.get("properties", {}))
    required = set(node.get("required", []))
    for part in node.get("allOf", []):
        more, more_required = _properties(spec, part)
        props.update(more)
        required |= more_required
    return props, required


def _pairs(
    spec: Spec, model: type, schema: Mapping[str, Any], where: str, seen: set[type]
) -> Iterator[Pair]:
    if model in seen:
        return
    seen.add(model)
    props, required = _properties(spec, schema)
    infos = fields_of(model)
    spellings = {k: i for i in infos for k in (i.rule.key, *i.rule.aliases)}
    for extra in props.keys() - spellings.keys():
        yield Pair(f"{where}/{extra}", model, None, extra, props[extra], extra in required)
    for info in infos:
        key = next((k for k in (info.rule.key, *info.rule.aliases) if k in props), None)
        prop = spec.resolve(props[key]) if key is not None else None
        if prop is not None and info.is_list and "items" in prop:
            prop = spec.resolve(prop["items"])
        yield Pair(f"{where}/{info.rule.key}", model, info, info.rule.key, prop,
                   key is not None and key in required)
        if prop is not None and dataclasses.is_dataclass(info.base):
            assert isinstance(info.base, type)
            yield from _pairs(spec, info.base, prop, f"{where}/{info.rule.key}", seen)


def _component(model: type) -> str:
    if model is common.Acknowledgement:
        return messages.ACKNOWLEDGMENT_OPENAPI_NAME
    name: str = model.OICP_NAME  # type: ignore[attr-defined]
    return name


MODELS: Final = sorted(set(messages.MESSAGES.values()), key=_component)


def _known(pair: Pair) -> bool:
    return (pair.model.__name__, pair.key) in KNOWN_DIFFERENCES


@pytest.mark.parametrize("model", MODELS, ids=_component)
def test_every_property_is_a_model_field(spec: Spec, model: type) -> None:
    name = _component(model)
    pairs = list(_pairs(spec, model, spec.schemas[name], name, set()))
    assert [p.where for p in pairs if p.info is None] == [], "not in the model"
    assert [p.where for p in pairs if p.prop is None] == [], "not in the OpenAPI"


@pytest.mark.parametrize("model", MODELS, ids=_component)
def test_mandatory_fields_enums_lengths_and_ranges_agree(spec: Spec, model: type) -> None:
    name = _component(model)
    problems = []
    for pair in _pairs(spec, model, spec.schemas[name], name, set()):
        info, prop = pair.info, pair.prop
        if info is None or prop is None or _known(pair):
            continue
        if info.required != pair.required_in_spec:
            problems.append(f"{pair.where}: mandatory {info.required}, OpenAPI "
                            f"{pair.required_in_spec}")
        if isinstance(info.base, type) and issubclass(info.base, StrEnum):
            ours = {member.value for member in info.base}
            if ours != {str(v) for v in prop.get("enum", ())}:
                problems.append(f"{pair.where}: enum {sorted(ours)}, OpenAPI {prop.get('enum')}")
        if info.base is str and info.rule.pattern is None:
            # OICP writes string lengths as "maximum" (and sometimes maxLength).
            limit = prop.get("maxLength", prop.get("maximum"))
            if limit is not None and limit != info.rule.max_length:
                problems.append(f"{pair.where}: length {info.rule.max_length}, OpenAPI {limit}")
        if info.base in (int, Decimal):
            for bound in ("minimum", "maximum"):
                official = prop.get(bound)
                if official is not None and official != getattr(info.rule, bound):
                    problems.append(f"{pair.where}: {bound} {getattr(info.rule, bound)}, "
                                    f"OpenAPI {official}")
    assert problems == []


def test_the_known_differences_name_real_fields(spec: Spec) -> None:
    seen = set()
    for model in MODELS:
        name = _component(model)
        for pair in _pairs(spec, model, spec.schemas[name], name, set()):
            if _known(pair):
                seen.add((pair.model.__name__, pair.key))
    assert seen == set(KNOWN_DIFFERENCES)
