"""Settings that would open a hole or crash the loader: plaintext to Hubject, URLs that
cannot be parsed, ports out of range."""

from __future__ import annotations

import pytest

from hubject_connector.config import ConfigErrors, load_config

BASE_URL = "HUBJECT_CONNECTOR_HUBJECT__BASE_URL"
PLAINTEXT = "HUBJECT_CONNECTOR_HUBJECT__INSECURE_PLAINTEXT"


def errors_of(env: dict[str, str]) -> dict[str, str]:
    """The loader's problems as {key: message}."""
    with pytest.raises(ConfigErrors) as raised:
        load_config(None, env)
    return {e.key: e.message for e in raised.value.errors}


def test_hubject_is_reached_over_https_only() -> None:
    errors = errors_of({BASE_URL: "http://127.0.0.1:8081/api/oicp"})
    assert list(errors) == ["hubject.base_url"]
    assert "plain http" in errors["hubject.base_url"]
    assert "insecure_plaintext" in errors["hubject.base_url"]
    assert load_config(None, {BASE_URL: "https://127.0.0.1:8081/api/oicp"}).hubject.url


def test_plain_http_only_by_an_explicit_setting_and_never_in_production() -> None:
    config = load_config(None, {BASE_URL: "http://127.0.0.1:8081/api/oicp", PLAINTEXT: "true"})
    assert config.hubject.insecure_plaintext
    errors = errors_of({BASE_URL: "http://127.0.0.1:8081/api/oicp", PLAINTEXT: "true",
                        "HUBJECT_CONNECTOR_HUBJECT__ENVIRONMENT": "production"})
    assert list(errors) == ["hubject.insecure_plaintext"]
    assert "production" in errors["hubject.insecure_plaintext"]
    # Refused in production even without an http URL: nobody sets it there by accident.
    assert "hubject.insecure_plaintext" in errors_of(
        {PLAINTEXT: "true", "HUBJECT_CONNECTOR_HUBJECT__ENVIRONMENT": "production"})


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("HUBJECT_CONNECTOR_BUS__RABBITMQ__URL", "amqp://guest:s3cret@[::1", "bus.rabbitmq.url"),
        ("HUBJECT_CONNECTOR_BUS__RABBITMQ__URL", "amqp://guest:s3cret@broker:99999/",
         "bus.rabbitmq.url"),
        ("HUBJECT_CONNECTOR_BUS__RABBITMQ__URL", "amqp://broker:five/", "bus.rabbitmq.url"),
        ("HUBJECT_CONNECTOR_BUS__RABBITMQ__URL", "amqp://broker:0/", "bus.rabbitmq.url"),
        ("HUBJECT_CONNECTOR_BUS__EMBEDDED__WEBHOOK_URL", "https://u:s3cret@[fe80::1/x",
         "bus.embedded.webhook_url"),
        (BASE_URL, "https://hubject.example:70000/api/oicp", "hubject.base_url"),
    ],
    ids=["open-bracket", "port-too-large", "port-not-a-number", "port-zero", "webhook",
         "base-url-port"],
)
def test_an_unparseable_url_is_a_clear_error(variable: str, value: str, key: str) -> None:
    errors = errors_of({variable: value})
    assert list(errors) == [key]
    assert variable in errors[key]  # says where it came from
    assert "s3cret" not in errors[key]  # and never echoes a password


def test_an_unparseable_dsn_is_a_clear_error() -> None:
    errors = errors_of({"HUBJECT_CONNECTOR_STATE__KIND": "postgresql",
                        "HUBJECT_CONNECTOR_STATE__POSTGRESQL__DSN": "postgresql://db:port/x"})
    assert list(errors) == ["state.postgresql.dsn"]


@pytest.mark.parametrize("key", ["ops.port", "inbound.port", "bus.embedded.http_port"])
@pytest.mark.parametrize("value", ["-1", "65536", "100000"])
def test_port_numbers_are_range_checked(key: str, value: str) -> None:
    variable = "HUBJECT_CONNECTOR_" + key.upper().replace(".", "__")
    errors = errors_of({variable: value})
    assert list(errors) == [key]
    assert "0 to 65535" in errors[key]


def test_every_problem_is_reported_at_once() -> None:
    errors = errors_of({
        BASE_URL: "http://hubject.example/api/oicp",
        "HUBJECT_CONNECTOR_BUS__RABBITMQ__URL": "amqp://[::1",
        "HUBJECT_CONNECTOR_OPS__PORT": "70000",
        "HUBJECT_CONNECTOR_INBOUND__PORT": "-5",
    })
    assert sorted(errors) == ["bus.rabbitmq.url", "hubject.base_url", "inbound.port",
                              "ops.port"]
