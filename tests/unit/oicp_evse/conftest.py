"""Fixtures for the EVSE data, EVSE status and pricing models: the official examples."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def cpo_schemas(cpo_openapi: dict[str, Any]) -> dict[str, Any]:
    """``components/schemas`` of the official CPO OpenAPI."""
    schemas: dict[str, Any] = cpo_openapi["components"]["schemas"]
    return schemas
