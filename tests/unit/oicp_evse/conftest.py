"""Fixtures for the EVSE data, EVSE status and pricing models: the official examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml


class _NoTimestampLoader(yaml.SafeLoader):
    """A safe YAML loader that keeps unquoted timestamps as the strings they are on the wire.

    The spec's examples write date-times unquoted; PyYAML's default resolver would turn
    them into ``datetime`` objects (dropping the original text), which no JSON body holds.
    """


_NoTimestampLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@pytest.fixture(scope="session")
def cpo_schemas(oicp_spec_dir: Path) -> dict[str, Any]:
    """``components/schemas`` of the official CPO OpenAPI."""
    text = (oicp_spec_dir / "cpo" / "openapi.yaml").read_text(encoding="utf-8")
    spec = yaml.load(text, Loader=_NoTimestampLoader)  # noqa: S506 - a SafeLoader subclass
    schemas: dict[str, Any] = spec["components"]["schemas"]
    return schemas
