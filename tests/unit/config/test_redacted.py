"""The printable effective configuration hides secrets."""

from __future__ import annotations

import json
from pathlib import Path

from hubject_connector.config import REDACTED, load_config, redacted


def test_secret_paths_and_url_passwords_are_redacted() -> None:
    env = {
        "HUBJECT_CONNECTOR_HUBJECT__CLIENT_CERT": "/certs/client.crt",
        "HUBJECT_CONNECTOR_HUBJECT__CLIENT_KEY": "/certs/client.key",
        "HUBJECT_CONNECTOR_BUS__RABBITMQ__URL": "amqp://connector:s3cr3t@broker:5672/vhost",
        "HUBJECT_CONNECTOR_BUS__RABBITMQ__PASSWORD_FILE": "/run/secrets/rabbitmq",
        "HUBJECT_CONNECTOR_INBOUND__TLS_CERT": "/certs/server.crt",
        "HUBJECT_CONNECTOR_INBOUND__TLS_KEY": "/certs/server.key",
        "HUBJECT_CONNECTOR_BUS__EMBEDDED__WEBHOOK_URL": "https://hook:pw@backend.example/x",
    }
    data = redacted(load_config(None, env))
    text = json.dumps(data)
    for secret in ("client.key", "s3cr3t", "/run/secrets", "server.key", ":pw@"):
        assert secret not in text
    assert data["hubject"]["client_key"] == REDACTED
    assert data["inbound"]["tls_key"] == REDACTED
    assert data["bus"]["rabbitmq"]["password_file"] == REDACTED
    assert data["bus"]["rabbitmq"]["url"] == f"amqp://connector:{REDACTED}@broker:5672/vhost"
    assert data["bus"]["embedded"]["webhook_url"] == f"https://hook:{REDACTED}@backend.example/x"
    # What is not secret stays readable.
    assert data["hubject"]["client_cert"] == "/certs/client.crt"
    assert data["inbound"]["tls_cert"] == "/certs/server.crt"


def test_unset_secrets_show_as_unset() -> None:
    data = redacted(load_config(None, {}))
    assert data["hubject"]["client_key"] is None
    assert data["bus"]["rabbitmq"]["url"] == "amqp://guest@127.0.0.1:5672/"


def test_redacted_is_plain_data(example_path: Path) -> None:
    data = redacted(load_config(example_path, {}))
    assert json.loads(json.dumps(data)) == data
    assert data["bus"]["retry_delays_seconds"] == [5.0, 30.0, 300.0]
    assert data["bus"]["embedded"]["path"] == "var/bus.sqlite3"
