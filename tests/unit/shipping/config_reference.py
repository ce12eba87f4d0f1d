"""The configuration reference, derived from the dataclasses of ``hubject_connector.config``.

Every setting is a leaf of ``Config``: its dotted key, its type and its default, written as
in the TOML file. ``test_readme.py`` checks that the README's table lists exactly these,
with these types and defaults. After adding a setting, print the rows with

    .venv/bin/python -m tests.unit.shipping.config_reference

and paste them into README.md ("Configuration reference"), completing the descriptions;
a description comes from the ``#:`` comment above the field when it has one.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hubject_connector.config import Config

_FIELD_LINE: Final = re.compile(r"^\s+([a-z_][a-z0-9_]*)\s*:")


@dataclass(frozen=True)
class Setting:
    """One leaf of the configuration."""

    key: str
    type: str
    default: str
    doc: str


def settings() -> list[Setting]:
    """Every setting of ``Config``, in declaration order."""
    found: list[Setting] = []
    _walk(Config, "", found)
    return found


def _walk(cls: type, prefix: str, found: list[Setting]) -> None:
    hints = typing.get_type_hints(cls)
    docs = _field_docs(cls)
    defaults = cls()
    for item in dataclasses.fields(cls):
        key = f"{prefix}{item.name}"
        hint = hints[item.name]
        if dataclasses.is_dataclass(hint):
            assert isinstance(hint, type)
            _walk(hint, key + ".", found)
            continue
        found.append(Setting(key, type_text(hint), value_text(getattr(defaults, item.name)),
                             docs.get(item.name, "")))


def _field_docs(cls: type) -> dict[str, str]:
    """The ``#:`` comment lines right above each field of ``cls``, joined."""
    docs: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        match = _FIELD_LINE.match(line)
        if match and pending:
            docs[match.group(1)] = " ".join(pending)
        pending = []
    return docs


def type_text(hint: Any) -> str:
    """A type as the reader of a TOML file thinks of it."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        return f"{type_text(inner[0])}, optional"
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin is tuple:
        return f"list of {type_text(args[0])}"
    if origin is dict:
        return f"table of {type_text(args[1])}"
    names = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}
    if hint in names:
        return names[hint]
    raise TypeError(f"no text for the setting type {hint!r}")


def value_text(value: Any) -> str:
    """A default value as written in TOML; ``unset`` for None."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {value_text(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no text for the default {value!r}")


def row(setting: Setting, description: str | None = None) -> str:
    """One Markdown table row: key, type, default, description."""
    text = setting.doc if description is None else description
    return f"| `{setting.key}` | {setting.type} | `{setting.default}` | {text} |"


if __name__ == "__main__":
    print("| Key | Type | Default | Meaning |")
    print("|---|---|---|---|")
    for each in settings():
        print(row(each))
