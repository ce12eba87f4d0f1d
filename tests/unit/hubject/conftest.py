"""Fixtures of the transport's unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def default_structlog() -> Iterator[None]:
    """structlog's defaults for the test, so ``capture_logs`` sees every level.

    Another test may have configured logging (and a level filter) process-wide.
    """
    saved = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)
