"""Fixtures for the logging tests: configure logging into a buffer, undo it afterwards."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from hubject_connector.logs import LogFormat, configure_logging

Capture = Callable[[LogFormat], io.StringIO]


@pytest.fixture
def capture_logs() -> Iterator[Capture]:
    """Configure logging in the given format into a fresh buffer; restore on teardown."""
    root = logging.getLogger()
    level = root.level
    handlers = list(root.handlers)

    def configure(format: LogFormat) -> io.StringIO:
        buffer = io.StringIO()
        configure_logging(format, "debug", stream=buffer)
        return buffer

    yield configure
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """Each line of JSON log output, parsed."""
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
