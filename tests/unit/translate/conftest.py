"""Fixtures of the translation tests: the documented examples, a context, the OpenAPI oracle."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hubject_connector.bus.contract import MessageType
from hubject_connector.translate.outbound import Context
from tests.unit.bus_contract.documents import fenced_blocks
from tests.unit.oicp_conformance.conftest import Spec

#: The configured operator of every test: a Berlin CPO.
CTX = Context(operator_id="DE*ABC", operator_name="ABC Charging", zone=ZoneInfo("Europe/Berlin"))

Example = Callable[[MessageType], dict[str, Any]]


@cache
def _documented() -> dict[str, dict[str, Any]]:
    """The first example of each message type in docs/contract.md, by type."""
    examples: dict[str, dict[str, Any]] = {}
    for body in fenced_blocks("json"):
        document = json.loads(body)
        examples.setdefault(document["type"], document)
    return examples


def documented_data(message_type: MessageType) -> dict[str, Any]:
    """A fresh copy of the ``data`` of the documented example of ``message_type``."""
    return copy.deepcopy(_documented()[str(message_type)]["data"])


@pytest.fixture
def example() -> Example:
    """The ``data`` of a documented example, a fresh copy to change in a test."""
    return documented_data


@pytest.fixture
def ctx() -> Context:
    """The configured operator: DE*ABC, "ABC Charging", Europe/Berlin."""
    return CTX


@pytest.fixture(scope="session")
def spec(cpo_openapi: dict[str, Any]) -> Spec:
    """The official CPO OpenAPI of OICP 2.3 as an oracle."""
    return Spec(cpo_openapi)
