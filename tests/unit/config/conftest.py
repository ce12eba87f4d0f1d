"""Fixtures for the configuration tests: TOML files written into a temporary folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "config" / "connector.example.toml"

WriteToml = Callable[[str], Path]


@pytest.fixture
def write_toml(tmp_path: Path) -> WriteToml:
    """Write TOML text to a file in ``tmp_path`` and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "connector.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def example_path() -> Path:
    """The documented example configuration in config/."""
    return EXAMPLE
