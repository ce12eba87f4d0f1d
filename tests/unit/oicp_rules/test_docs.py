"""docs/conformance.md and the code in step: one row per rule id, with the rule's source,
outcome, needs and wording as the code declares them, naming a test that exists and
proves that rule."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from hubject_connector.oicp.context import ALL_RULES
from tests.unit.oicp_rules.test_rules import CASES

ROOT: Final = Path(__file__).resolve().parents[3]
DOC: Final = ROOT / "docs" / "conformance.md"
HEADER: Final = "| Rule | Outcome | Needs | Source | Error wording | Test |"
_TEST: Final = re.compile(r"(?P<path>[\w/.]+\.py)::(?P<function>\w+)(\[(?P<param>[\w:-]+)\])?")


@dataclass(frozen=True)
class Row:
    rule: str
    outcome: str
    needs: str
    source: str
    wording: str
    test: str


def _unquote(cell: str) -> str:
    assert cell.startswith("`"), cell
    assert cell.endswith("`"), cell
    return cell[1:-1]


def _rows() -> list[Row]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADER) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 6, line
        rule, outcome, needs, source, wording, test = cells
        rows.append(Row(_unquote(rule), outcome, needs, source, _unquote(wording),
                        _unquote(test)))
    return rows


ROWS: Final = _rows()


def test_every_rule_has_one_row_and_every_row_a_rule() -> None:
    ids = [row.rule for row in ROWS]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(ALL_RULES)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.rule)
def test_the_row_says_what_the_code_declares(row: Row) -> None:
    rule = ALL_RULES[row.rule]
    assert (row.outcome, row.needs, row.source, row.wording) == (
        rule.severity.value, rule.needs.value, rule.source, rule.wording
    )


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.rule)
def test_the_named_test_exists_and_is_about_the_rule(row: Row) -> None:
    match = _TEST.fullmatch(row.test)
    assert match is not None, row.test
    path = ROOT / match["path"]
    assert path.is_file(), row.test
    source = path.read_text(encoding="utf-8")
    assert re.search(rf"^(async )?def {match['function']}\(", source, re.MULTILINE), row.test
    if match["param"] is not None:
        # A row of the break-one-rule table: the case with that id breaks this rule.
        assert match["path"] == "tests/unit/oicp_rules/test_rules.py"
        assert match["function"] == "test_breaking_one_rule"
        assert {case.id: case.rule for case in CASES}[match["param"]] == row.rule
    else:
        # A test of its own: its name says which rule it proves.
        assert row.rule.removeprefix("answer-").replace("-", "_") in match["function"]
