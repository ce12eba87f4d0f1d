"""README.md cannot drift: its configuration reference and its command table are checked.

The configuration reference must list exactly the settings of ``Config``, each with the
type and default the dataclasses give it (``config_reference.py`` derives them and prints
fresh rows); the command table must name every command and subcommand the parser has.
"""

from __future__ import annotations

import argparse
import re
from typing import Final

import pytest

from hubject_connector.cli import build_parser
from tests.unit.shipping.config_reference import Setting, row, settings
from tests.unit.shipping.conftest import REPO

README: Final = REPO / "README.md"
START: Final = "<!-- config-reference:start -->"
END: Final = "<!-- config-reference:end -->"
HINT: Final = ("print the expected rows with `.venv/bin/python -m "
               "tests.unit.shipping.config_reference` and update README.md")


def cells(line: str) -> list[str]:
    """The cells of a Markdown table row (an escaped ``\\|`` stays inside its cell)."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def reference_rows(text: str) -> dict[str, list[str]]:
    """The README's configuration table: key -> [type, default, meaning]."""
    assert (text.count(START), text.count(END)) == (1, 1), "reference markers missing"
    section = text.split(START, 1)[1].split(END, 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            key, *rest = cells(line)
            assert key.strip("`") not in rows, f"{key} listed twice"
            rows[key.strip("`")] = rest
    return rows


SETTINGS: Final = settings()


def test_the_reference_lists_every_setting_and_nothing_else() -> None:
    rows = reference_rows(README.read_text(encoding="utf-8"))
    missing = [s.key for s in SETTINGS if s.key not in rows]
    unknown = sorted(set(rows) - {s.key for s in SETTINGS})
    assert missing == [], f"settings missing from the README: {missing}; {HINT}"
    assert unknown == [], f"the README lists settings that do not exist: {unknown}; {HINT}"


@pytest.mark.parametrize("setting", SETTINGS, ids=[s.key for s in SETTINGS])
def test_each_setting_has_its_type_default_and_a_meaning(setting: Setting) -> None:
    rows = reference_rows(README.read_text(encoding="utf-8"))
    if setting.key not in rows:
        pytest.fail(f"{setting.key} is missing from the README; {HINT}")
    kind, default, meaning = rows[setting.key]
    expected = cells(row(setting, "x"))
    assert (kind, default) == (expected[1], expected[2]), HINT
    assert meaning, f"{setting.key} has no meaning in the README"


def test_the_reference_check_sees_a_wrong_default() -> None:
    # The tests above mean something only if a changed default is noticed.
    wrong = README.read_text(encoding="utf-8").replace(
        "| `ops.port` | integer | `9090` |", "| `ops.port` | integer | `9091` |")
    rows = reference_rows(wrong)
    port = next(s for s in SETTINGS if s.key == "ops.port")
    assert rows["ops.port"][1] != cells(row(port, "x"))[2]


def commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """Every command path the parser knows, e.g. ``dlq replay``."""
    found: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = f"{prefix}{name}"
                below = commands(sub, path + " ")
                found.extend(below or [path])
    return found


def test_the_command_table_names_every_command() -> None:
    text = README.read_text(encoding="utf-8")
    table = [line for line in text.split("## Commands", 1)[1].split("\n## ", 1)[0].splitlines()
             if line.startswith("| `hubject-connector ")]
    listed = {cells(line)[0].strip("`") for line in table}
    for path in commands(build_parser()):
        assert any(entry == f"hubject-connector {path}"
                   or entry.startswith(f"hubject-connector {path} ") for entry in listed), path
