"""Fixtures of the bus contract tests: one valid, documented message per type."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from hubject_connector.bus.contract import MessageType
from tests.unit.bus_contract.documents import fenced_blocks


@cache
def _examples_by_type() -> dict[str, dict[str, Any]]:
    examples: dict[str, dict[str, Any]] = {}
    for body in fenced_blocks("json"):
        document = json.loads(body)
        examples.setdefault(document["type"], document)
    return examples


@pytest.fixture
def example() -> Callable[[MessageType], dict[str, Any]]:
    """A fresh copy of the documented example of a message type, to break in a test."""

    def make(message_type: MessageType) -> dict[str, Any]:
        return copy.deepcopy(_examples_by_type()[str(message_type)])

    return make
