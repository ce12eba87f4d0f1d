"""The QA and production examples in config/ load, and say what they are for."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubject_connector.config import PRODUCTION_URL, QA_URL, load_config

CONFIG = Path(__file__).resolve().parents[3] / "config"


@pytest.mark.parametrize(("name", "url"), [("qa.toml", QA_URL),
                                           ("production.toml", PRODUCTION_URL)])
def test_example_loads_for_its_platform(name: str, url: str) -> None:
    config = load_config(CONFIG / name, {})
    assert config.hubject.url == url
    assert config.hubject.client_cert is not None
    assert config.hubject.ca_bundle is not None
    assert config.inbound.tls_cert is not None


def test_production_runs_replicas_on_shared_services_and_requires_client_certificates() -> None:
    config = load_config(CONFIG / "production.toml", {})
    assert config.bus.kind == "rabbitmq"
    assert config.state.kind == "postgresql"
    assert config.inbound.client_cert_mode == "required"
    assert config.hubject.insecure_plaintext is False
    assert config.logging.level == "info"
