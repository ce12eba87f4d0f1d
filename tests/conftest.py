"""Fixtures shared by every test area. Area-specific fixtures live in their own conftest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from hubject_connector.certs import DevPki, make_dev_pki

_REPO = Path(__file__).resolve().parent.parent

# The fake Hubject's fixtures (hubject_simulator, ...), as users enable them too.
pytest_plugins = ["hubject_connector.simulator.pytest_plugin"]


def spec_dir() -> Path | None:
    """Where Hubject's official OpenAPI files are: $OICP_SPEC_DIR or ../shared/oicp-2.3."""
    configured = os.environ.get("OICP_SPEC_DIR")
    candidates = [Path(configured)] if configured else []
    candidates.append(_REPO.parent / "shared" / "oicp-2.3")
    for candidate in candidates:
        if (candidate / "cpo" / "openapi.yaml").is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def oicp_spec_dir() -> Path:
    """The official spec folder; tests that need it skip with the reason where it is absent."""
    found = spec_dir()
    if found is None:
        pytest.skip(
            "official OICP 2.3 OpenAPI not found: set OICP_SPEC_DIR or provide ../shared/oicp-2.3"
        )
    return found


class _NoTimestampLoader(yaml.SafeLoader):
    """A safe YAML loader that keeps unquoted timestamps as the strings they are on the wire.

    The spec's examples write date-times unquoted (``2020-09-23T14:17:53.038Z``); PyYAML's
    default resolver would turn them into ``datetime`` objects, which no JSON body holds.
    """


_NoTimestampLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@pytest.fixture(scope="session")
def cpo_openapi(oicp_spec_dir: Path) -> dict[str, Any]:
    """The official CPO OpenAPI document, parsed once for every area: do not modify it."""
    text = (oicp_spec_dir / "cpo" / "openapi.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.load(text, Loader=_NoTimestampLoader)  # noqa: S506 - safe
    return document


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """A throwaway PKI (CA, server, Hubject and CPO client certificates, a second CA)."""
    return make_dev_pki(tmp_path_factory.mktemp("pki"), operator_id="DE*ABC")
