"""The contract's JSON Schemas compiled into plain Python predicates: a fast "valid".

What this room is for: speed on the bus's hot path. Walking a schema with the
``jsonschema`` validator costs about 0.2 ms per status message, most of a consumer's
time per message; almost every message is valid. :func:`compile_schema` turns a schema
(its ``$ref``s resolved through the same registry) into nested closures that answer one
question, "does the schema accept this document?", about twenty times faster.

What passes through: a schema in, a :data:`Check` out. It hands back True only for a
document the schema accepts; the ``jsonschema`` validator stays the judge of everything
else (``bus/contract.py`` asks it whenever a check says False, and it alone words the
errors with their JSON pointers), so error texts cannot change.

The predicate must never accept what the validator refuses. It implements the keywords
the contract's schemas use, each exactly as ``jsonschema`` does for draft 2020-12 (type
checks as its type checker, ``const``/``enum`` equality that keeps ``true`` apart from
``1``, ``pattern`` through the caller's regex rule, ``format`` through the caller's
format checker). A keyword it does not know raises :class:`UnsupportedSchema` at compile
time: that schema then keeps the validator alone.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol

from referencing import Registry

#: A compiled schema: True when the schema accepts the document.
Check = Callable[[Any], bool]

#: Keywords that validate nothing (annotations, identifiers, definitions).
_ANNOTATIONS: Final = frozenset({
    "$schema", "$id", "$defs", "$comment", "title", "description", "examples", "default",
    "deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType",
})


class Resolver(Protocol):
    """What the compiler needs of ``referencing``'s resolver (not exported by it)."""

    def lookup(self, ref: str) -> Any:
        """The target of ``ref``: ``.contents`` and the ``.resolver`` to go on with."""


class UnsupportedSchema(Exception):
    """The schema uses a keyword the compiler does not implement (the validator stays)."""


def _is_integer(value: Any) -> bool:
    # jsonschema (draft 6 and later): an int that is not a bool, or a float without fraction.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Number)


_TYPES: Final[Mapping[str, Check]] = {
    "array": lambda value: isinstance(value, list),
    "boolean": lambda value: isinstance(value, bool),
    "integer": _is_integer,
    "null": lambda value: value is None,
    "number": _is_number,
    "object": lambda value: isinstance(value, dict),
    "string": lambda value: isinstance(value, str),
}


def json_equal(one: Any, two: Any) -> bool:
    """Equality as JSON Schema means it (``const``, ``enum``): ``true`` is not ``1``."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(json_equal(a, b) for a, b in zip(one, two,
                                                                               strict=True))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(json_equal(one[k], two[k]) for k in one)
    if isinstance(one, bool) or isinstance(two, bool):
        return False
    if isinstance(one, list | dict) or isinstance(two, list | dict):
        return False
    return bool(one == two)


def _all(checks: Sequence[Check]) -> Check:
    if not checks:
        return lambda value: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)
    frozen = tuple(checks)
    return lambda value: all(check(value) for check in frozen)


class SchemaCompiler:
    """Compiles schemas of one registry; ``$ref`` targets are compiled once and shared.

    ``pattern`` gives the compiled regex of a ``pattern`` keyword (the caller's rule: the
    contract matches ECMA-262's ``$``); ``format_ok(value, name)`` says whether a value
    conforms to a ``format`` (the caller's format checker; unchecked formats conform).
    """

    def __init__(self, registry: Registry[Any], *, pattern: Callable[[str], re.Pattern[str]],
                 format_ok: Callable[[Any, str], bool]) -> None:
        self._registry = registry
        self._pattern = pattern
        self._format_ok = format_ok
        self._done: dict[int, Check] = {}
        self._pending: dict[int, list[Check]] = {}

    def compile(self, schema: Mapping[str, Any] | bool, base_uri: str) -> Check:
        """The check of ``schema``, a resource of the registry at ``base_uri``."""
        resolver: Resolver = self._registry.resolver(base_uri=base_uri)
        return self._schema(schema, resolver, root=True)

    def _schema(self, schema: Any, resolver: Resolver, *, root: bool = False) -> Check:
        if schema is True:
            return lambda value: True
        if schema is False:
            return lambda value: False
        if not isinstance(schema, Mapping):
            raise UnsupportedSchema(f"a schema must be an object or a boolean: {schema!r}")
        if "$id" in schema and not root:
            raise UnsupportedSchema("an embedded resource ($id below the root)")
        checks: list[Check] = []
        typed: list[Check] = []
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS or keyword in ("then", "else"):
                continue
            build = _BUILDERS.get(keyword)
            if build is None:
                raise UnsupportedSchema(f"keyword {keyword!r}")
            check = build(self, value, schema, resolver)
            # Cheap type checks first: they refuse the wrong kind of value early.
            (typed if keyword == "type" else checks).append(check)
        return _all([*typed, *checks])

    # --- applicators ---------------------------------------------------------------------

    def _k_ref(self, ref: str, schema: Mapping[str, Any], resolver: Resolver) -> Check:
        resolved = resolver.lookup(ref)
        # A subschema lives in one document, so its identity fixes its base URI too.
        key = id(resolved.contents)
        done = self._done.get(key)
        if done is not None:
            return done
        pending = self._pending.get(key)
        if pending is not None:
            # A recursive reference: look the check up when it runs (compiled by then).
            cell = pending
            return lambda value: cell[0](value)
        cell = []
        self._pending[key] = cell
        try:
            # A target may be another document's root, with its own $id: the resolver
            # handed back already resolves from there.
            check = self._schema(resolved.contents, resolved.resolver, root=True)
        finally:
            del self._pending[key]
        cell.append(check)
        self._done[key] = check
        return check

    def _k_allOf(self, subschemas: Sequence[Any], schema: Mapping[str, Any],
                 resolver: Resolver) -> Check:
        return _all([self._schema(s, resolver) for s in subschemas])

    def _k_anyOf(self, subschemas: Sequence[Any], schema: Mapping[str, Any],
                 resolver: Resolver) -> Check:
        checks = tuple(self._schema(s, resolver) for s in subschemas)
        return lambda value: any(check(value) for check in checks)

    def _k_oneOf(self, subschemas: Sequence[Any], schema: Mapping[str, Any],
                 resolver: Resolver) -> Check:
        checks = tuple(self._schema(s, resolver) for s in subschemas)
        return lambda value: sum(1 for check in checks if check(value)) == 1

    def _k_not(self, subschema: Any, schema: Mapping[str, Any], resolver: Resolver) -> Check:
        check = self._schema(subschema, resolver)
        return lambda value: not check(value)

    def _k_if(self, subschema: Any, schema: Mapping[str, Any], resolver: Resolver) -> Check:
        condition = self._schema(subschema, resolver)
        then = self._schema(schema.get("then", True), resolver)
        otherwise = self._schema(schema.get("else", True), resolver)
        return lambda value: then(value) if condition(value) else otherwise(value)

    def _k_properties(self, properties: Mapping[str, Any], schema: Mapping[str, Any],
                      resolver: Resolver) -> Check:
        checks = tuple((name, self._schema(sub, resolver)) for name, sub in properties.items())

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            return all(sub(value[name]) for name, sub in checks if name in value)

        return check

    def _k_additionalProperties(self, subschema: Any,
                                schema: Mapping[str, Any], resolver: Resolver) -> Check:
        if "patternProperties" in schema:
            raise UnsupportedSchema("patternProperties")
        known = frozenset(schema.get("properties", {}))
        if subschema is False:
            return lambda value: not isinstance(value, dict) or value.keys() <= known
        extra = self._schema(subschema, resolver)

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            return all(extra(item) for name, item in value.items() if name not in known)

        return check

    def _k_propertyNames(self, subschema: Any, schema: Mapping[str, Any],
                         resolver: Resolver) -> Check:
        names = self._schema(subschema, resolver)
        return lambda value: not isinstance(value, dict) or all(names(k) for k in value)

    def _k_items(self, subschema: Any, schema: Mapping[str, Any], resolver: Resolver) -> Check:
        if "prefixItems" in schema:
            raise UnsupportedSchema("prefixItems")
        item = self._schema(subschema, resolver)
        return lambda value: not isinstance(value, list) or all(item(i) for i in value)

    def _k_contains(self, subschema: Any, schema: Mapping[str, Any],
                    resolver: Resolver) -> Check:
        if "minContains" in schema or "maxContains" in schema:
            raise UnsupportedSchema("minContains/maxContains")
        item = self._schema(subschema, resolver)
        return lambda value: not isinstance(value, list) or any(item(i) for i in value)

    # --- assertions ------------------------------------------------------------------------

    def _k_type(self, kinds: str | Sequence[str], schema: Mapping[str, Any],
                resolver: Resolver) -> Check:
        names = [kinds] if isinstance(kinds, str) else list(kinds)
        try:
            checks = tuple(_TYPES[name] for name in names)
        except KeyError as exc:
            raise UnsupportedSchema(f"type {exc.args[0]!r}") from None
        if len(checks) == 1:
            return checks[0]
        return lambda value: any(check(value) for check in checks)

    def _k_required(self, names: Sequence[str], schema: Mapping[str, Any],
                    resolver: Resolver) -> Check:
        needed = tuple(names)
        return lambda value: not isinstance(value, dict) or all(n in value for n in needed)

    def _k_const(self, const: Any, schema: Mapping[str, Any], resolver: Resolver) -> Check:
        if isinstance(const, str):
            return lambda value: isinstance(value, str) and value == const
        return lambda value: json_equal(value, const)

    def _k_enum(self, options: Sequence[Any], schema: Mapping[str, Any],
                resolver: Resolver) -> Check:
        if all(isinstance(option, str) for option in options):
            allowed = frozenset(options)
            return lambda value: isinstance(value, str) and value in allowed
        frozen = tuple(options)
        return lambda value: any(json_equal(value, option) for option in frozen)

    def _k_pattern(self, pattern: str, schema: Mapping[str, Any],
                   resolver: Resolver) -> Check:
        search = self._pattern(pattern).search
        return lambda value: not isinstance(value, str) or search(value) is not None

    def _k_format(self, name: str, schema: Mapping[str, Any], resolver: Resolver) -> Check:
        conforms = self._format_ok
        return lambda value: conforms(value, name)

    def _k_minLength(self, limit: int, schema: Mapping[str, Any],
                     resolver: Resolver) -> Check:
        return lambda value: not isinstance(value, str) or len(value) >= limit

    def _k_maxLength(self, limit: int, schema: Mapping[str, Any],
                     resolver: Resolver) -> Check:
        return lambda value: not isinstance(value, str) or len(value) <= limit

    def _k_minItems(self, limit: int, schema: Mapping[str, Any],
                    resolver: Resolver) -> Check:
        return lambda value: not isinstance(value, list) or len(value) >= limit

    def _k_maxItems(self, limit: int, schema: Mapping[str, Any],
                    resolver: Resolver) -> Check:
        return lambda value: not isinstance(value, list) or len(value) <= limit

    def _k_minimum(self, limit: float, schema: Mapping[str, Any],
                   resolver: Resolver) -> Check:
        return lambda value: not _is_number(value) or value >= limit

    def _k_maximum(self, limit: float, schema: Mapping[str, Any],
                   resolver: Resolver) -> Check:
        return lambda value: not _is_number(value) or value <= limit


_Builder = Callable[[SchemaCompiler, Any, Mapping[str, Any], Resolver], Check]
#: The keywords implemented, each by its ``SchemaCompiler._k_*`` method.
_BUILDERS: Final[Mapping[str, _Builder]] = {
    ("$ref" if name == "ref" else name): getattr(SchemaCompiler, "_k_" + name)
    for name in (
        "ref", "allOf", "anyOf", "oneOf", "not", "if", "properties", "additionalProperties",
        "propertyNames", "items", "contains", "type", "required", "const", "enum", "pattern",
        "format", "minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum",
    )
}


def compile_schema(schema: Mapping[str, Any], base_uri: str, registry: Registry[Any], *,
                   pattern: Callable[[str], re.Pattern[str]],
                   format_ok: Callable[[Any, str], bool]) -> Check | None:
    """The check of ``schema`` (see the module doc), or None when it cannot be compiled."""
    try:
        return SchemaCompiler(registry, pattern=pattern, format_ok=format_ok).compile(
            schema, base_uri)
    except UnsupportedSchema:
        return None
