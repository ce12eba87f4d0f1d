"""The status code table is the OpenAPI's, code for code and meaning for meaning."""

from __future__ import annotations

import re

import pytest

from hubject_connector.oicp import status
from tests.unit.oicp_conformance.conftest import Spec

pytestmark = pytest.mark.spec

# A row of the markdown table in the description of StatusCode.Code: "| 000 | Success. | ...".
_ROW = re.compile(r"^\|\s*(\d{3})\s*\|([^|]*)\|")


def _official(spec: Spec) -> dict[str, str]:
    description = spec.schemas["StatusCode"]["properties"]["Code"]["description"]
    rows = (_ROW.match(line.strip()) for line in description.splitlines())
    return {m.group(1): " ".join(m.group(2).split()) for m in rows if m}


def test_every_official_code_is_in_the_table_with_its_meaning(spec: Spec) -> None:
    official = _official(spec)
    assert len(official) > 25, "the OpenAPI's table was not read"
    assert {code: info.meaning for code, info in status.STATUS_CODES.items()} == official


def test_inbound_answer_codes_are_official_codes(spec: Spec) -> None:
    assert set(_official(spec)) >= status.INBOUND_ANSWER_CODES
