"""The example configuration documents every setting, and loads."""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from pathlib import Path
from typing import Any

from hubject_connector.config import Config, load_config

# "# key = value": an optional setting shown commented out.
_COMMENTED_SETTING = re.compile(r"^# ([A-Za-z_][A-Za-z0-9_]*) = ")
_SETTING = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*) = ")


def dataclass_keys(cls: type, prefix: str = "") -> set[str]:
    """Every setting of the configuration dataclasses, as dotted keys."""
    keys: set[str] = set()
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        key = f"{prefix}{field.name}"
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            assert isinstance(hint, type)
            keys |= dataclass_keys(hint, key + ".")
        else:
            keys.add(key)
    return keys


def toml_keys(data: dict[str, Any], cls: type, prefix: str = "") -> set[str]:
    """The dotted keys a parsed TOML document sets (a mapping setting counts as one)."""
    keys: set[str] = set()
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        key = f"{prefix}{name}"
        hint = hints.get(name)
        if isinstance(value, dict) and dataclasses.is_dataclass(hint):
            assert isinstance(hint, type)
            keys |= toml_keys(value, hint, key + ".")
        else:
            keys.add(key)
    return keys


def uncommented(text: str) -> str:
    """The example with every commented-out "# key = value" setting switched on."""
    return "\n".join(
        line[2:] if _COMMENTED_SETTING.match(line) else line for line in text.splitlines()
    )


def test_the_example_loads(example_path: Path) -> None:
    config = load_config(example_path, {})
    assert config.hubject.operator_id == "DE*ABC"


def test_the_example_with_every_optional_setting_switched_on_loads(
    example_path: Path, tmp_path: Path
) -> None:
    full = tmp_path / "full.toml"
    full.write_text(uncommented(example_path.read_text(encoding="utf-8")), encoding="utf-8")
    config = load_config(full, {})
    assert config.hubject.client_key == Path("certs/client.key")
    assert config.hubject.rate_limits["PushEvseStatus"] == 2000
    assert config.bus.rabbitmq.password_file is not None


def test_every_setting_appears_in_the_example(example_path: Path) -> None:
    data = tomllib.loads(uncommented(example_path.read_text(encoding="utf-8")))
    documented = toml_keys(data, Config)
    expected = dataclass_keys(Config)
    assert expected - documented == set(), "settings missing from the example"
    assert documented - expected == set(), "the example sets keys that do not exist"


def test_every_setting_in_the_example_has_a_comment_above_it(example_path: Path) -> None:
    lines = example_path.read_text(encoding="utf-8").splitlines()
    section = ""
    for number, line in enumerate(lines):
        if line.startswith("["):
            section = line
            continue
        match = _SETTING.match(line) or _COMMENTED_SETTING.match(line)
        if not match or section == "[hubject.rate_limits]":
            continue  # operation names are explained once, above the list
        above = lines[number - 1]
        message = f"line {number + 1}: {match.group(1)} has no comment above it"
        assert above.startswith("# "), message
        assert not _SETTING.match(above[2:]), message


def test_the_documentation_test_sees_a_missing_setting(
    example_path: Path,
) -> None:
    # The completeness check must be able to fail: drop one setting and it notices.
    text = uncommented(example_path.read_text(encoding="utf-8"))
    text = "\n".join(line for line in text.splitlines() if not line.startswith("prefetch ="))
    assert "bus.rabbitmq.prefetch" in dataclass_keys(Config) - toml_keys(tomllib.loads(text),
                                                                        Config)
