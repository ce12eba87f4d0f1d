"""Loading: TOML file, environment overrides, type parsing, validation, aggregated errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hubject_connector.config import (
    PRODUCTION_URL,
    Config,
    ConfigErrors,
    load_config,
)
from hubject_connector.errors import ConfigError
from tests.unit.config.conftest import WriteToml


def errors_of(path: Path | None, env: dict[str, str] | None = None,
              *, check_files: bool = False) -> dict[str, str]:
    """Load and return {key: message} of every error (fails when loading succeeds)."""
    with pytest.raises(ConfigErrors) as info:
        load_config(path, env or {}, check_files=check_files)
    return {e.key: e.message for e in info.value.errors}


def test_no_file_and_no_environment_gives_the_defaults() -> None:
    assert load_config(None, {}) == Config()


def test_file_values_are_read(write_toml: WriteToml) -> None:
    path = write_toml(
        """
        [hubject]
        operator_id = "DE*ABC"
        environment = "production"
        timeout_seconds = 12
        [hubject.retry]
        attempts = 3
        [bus]
        kind = "rabbitmq"
        retry_delays_seconds = [1, 2.5]
        [bus.rabbitmq]
        url = "amqps://connector@broker.example:5671/vhost"
        [inbound]
        allow_ips = ["10.0.0.0/8", "192.0.2.7"]
        """
    )
    config = load_config(path, {})
    assert config.hubject.operator_id == "DE*ABC"
    assert config.hubject.url == PRODUCTION_URL
    assert config.hubject.timeout_seconds == 12.0
    assert isinstance(config.hubject.timeout_seconds, float)
    assert config.hubject.retry.attempts == 3
    assert config.hubject.retry.max_delay_seconds == 30.0  # untouched default
    assert config.bus.kind == "rabbitmq"
    assert config.bus.retry_delays_seconds == (1.0, 2.5)
    assert config.bus.rabbitmq.url == "amqps://connector@broker.example:5671/vhost"
    assert config.inbound.allow_ips == ("10.0.0.0/8", "192.0.2.7")


def test_environment_overrides_the_file(write_toml: WriteToml) -> None:
    path = write_toml(
        """
        [hubject]
        operator_id = "DE*ABC"
        timeout_seconds = 12.0
        [hubject.rate_limits]
        PushEvseStatus = 1000
        AuthorizeStart = 100
        [bus]
        kind = "embedded"
        """
    )
    env = {
        "HUBJECT_CONNECTOR_HUBJECT__OPERATOR_ID": "+49*123",
        "HUBJECT_CONNECTOR_BUS__KIND": "rabbitmq",
        "HUBJECT_CONNECTOR_BUS__RABBITMQ__URL": "amqp://other@10.1.2.3:5672/",
        "HUBJECT_CONNECTOR_HUBJECT__RATE_LIMITS__PUSHEVSESTATUS": "500",
        "UNRELATED": "ignored",
    }
    config = load_config(path, env)
    assert config.hubject.operator_id == "+49*123"
    assert config.hubject.timeout_seconds == 12.0  # from the file, not overridden
    assert config.bus.kind == "rabbitmq"
    assert config.bus.rabbitmq.url == "amqp://other@10.1.2.3:5672/"
    # The environment's upper-case name lands on the operation's own name, replacing the
    # file's value; the file's other limit stays.
    assert config.hubject.rate_limits == {"PushEvseStatus": 500, "AuthorizeStart": 100}


def test_environment_values_are_parsed_into_the_field_types() -> None:
    env = {
        "HUBJECT_CONNECTOR_HUBJECT__RETRY__ATTEMPTS": "7",
        "HUBJECT_CONNECTOR_HUBJECT__TIMEOUT_SECONDS": "2.5",
        "HUBJECT_CONNECTOR_HUBJECT__ENVIRONMENT": "PRODUCTION",
        "HUBJECT_CONNECTOR_HUBJECT__CA_BUNDLE": "/etc/hubject/ca.pem",
        "HUBJECT_CONNECTOR_BUS__RETRY_DELAYS_SECONDS": "1, 10,100",
        "HUBJECT_CONNECTOR_INBOUND__ALLOW_IPS": "10.0.0.0/8,::1",
        "HUBJECT_CONNECTOR_INBOUND__CLIENT_CERT_MODE": "off",
        "HUBJECT_CONNECTOR_OPS__PORT": "0",
        "HUBJECT_CONNECTOR_LOGGING__LEVEL": "Debug",
    }
    config = load_config(None, env)
    assert config.hubject.retry.attempts == 7
    assert config.hubject.timeout_seconds == 2.5
    assert config.hubject.environment == "production"
    assert config.hubject.ca_bundle == Path("/etc/hubject/ca.pem")
    assert config.bus.retry_delays_seconds == (1.0, 10.0, 100.0)
    assert config.inbound.allow_ips == ("10.0.0.0/8", "::1")
    assert config.inbound.client_cert_mode == "off"
    assert config.ops.port == 0
    assert config.logging.level == "debug"


def test_booleans_from_the_environment() -> None:
    variable = "HUBJECT_CONNECTOR_BUS__RABBITMQ__QUORUM_QUEUES"
    assert load_config(None, {variable: "no"}).bus.rabbitmq.quorum_queues is False
    assert load_config(None, {variable: "TRUE"}).bus.rabbitmq.quorum_queues is True
    errors = errors_of(None, {variable: "maybe"})
    assert "true or false" in errors["bus.rabbitmq.quorum_queues"]


def test_an_empty_variable_unsets_an_optional_setting(write_toml: WriteToml) -> None:
    path = write_toml('[hubject]\nbase_url = "https://127.0.0.1:9443/api/oicp"\n')
    assert load_config(path, {}).hubject.base_url == "https://127.0.0.1:9443/api/oicp"
    config = load_config(path, {"HUBJECT_CONNECTOR_HUBJECT__BASE_URL": ""})
    assert config.hubject.base_url is None


def test_the_file_can_be_named_by_the_environment(write_toml: WriteToml) -> None:
    path = write_toml('[hubject]\noperator_id = "DE*XYZ"\n')
    config = load_config(None, {"HUBJECT_CONNECTOR_CONFIG": str(path)})
    assert config.hubject.operator_id == "DE*XYZ"


def test_an_explicit_path_wins_over_the_config_variable(
    write_toml: WriteToml, tmp_path: Path
) -> None:
    path = write_toml('[hubject]\noperator_id = "DE*XYZ"\n')
    other = tmp_path / "missing.toml"
    config = load_config(path, {"HUBJECT_CONNECTOR_CONFIG": str(other)})
    assert config.hubject.operator_id == "DE*XYZ"


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    errors = errors_of(tmp_path / "nope.toml")
    assert "nope.toml" in errors["config"]


def test_invalid_toml_is_an_error(write_toml: WriteToml) -> None:
    errors = errors_of(write_toml("[hubject\noperator_id = 1"))
    assert "not valid TOML" in errors["config"]


def test_unknown_keys_are_errors_with_a_suggestion(write_toml: WriteToml) -> None:
    path = write_toml(
        """
        [hubject]
        operator_idd = "DE*ABC"
        [hubjekt]
        x = 1
        [bus.rabbitmq]
        prefech = 3
        """
    )
    errors = errors_of(path, {"HUBJECT_CONNECTOR_OPS__PROT": "1"})
    assert "did you mean 'operator_id'" in errors["hubject.operator_idd"]
    assert "did you mean 'hubject'" in errors["hubjekt"]
    assert "did you mean 'prefetch'" in errors["bus.rabbitmq.prefech"]
    assert "did you mean 'port'" in errors["ops.prot"]
    assert "HUBJECT_CONNECTOR_OPS__PROT" in errors["ops.prot"]


def test_wrong_types_name_the_key_and_the_value(write_toml: WriteToml) -> None:
    path = write_toml(
        """
        [hubject]
        operator_id = 42
        timeout_seconds = "soon"
        client_cert = 3
        [hubject.retry]
        attempts = 2.5
        [bus]
        retry_delays_seconds = "5"
        rabbitmq = "amqp://x"
        [ops]
        port = true
        """
    )
    errors = errors_of(path, {"HUBJECT_CONNECTOR_INBOUND__PORT": "https"})
    assert errors["hubject.operator_id"].startswith("must be a string")
    assert errors["hubject.timeout_seconds"].startswith("must be a number")
    assert errors["hubject.client_cert"].startswith("must be a non-empty file path")
    assert errors["hubject.retry.attempts"].startswith("must be an integer")
    assert errors["bus.retry_delays_seconds"].startswith("must be a list")
    assert errors["bus.rabbitmq"].startswith("must be a table")
    assert errors["ops.port"].startswith("must be an integer")  # a bool is not a port
    assert "'https'" in errors["inbound.port"]
    assert "HUBJECT_CONNECTOR_INBOUND__PORT" in errors["inbound.port"]


def test_list_items_are_checked_one_by_one() -> None:
    errors = errors_of(None, {"HUBJECT_CONNECTOR_BUS__RETRY_DELAYS_SECONDS": "5,later,-1"})
    assert "'later'" in errors["bus.retry_delays_seconds[1]"]


def test_literal_choices_are_listed() -> None:
    errors = errors_of(None, {"HUBJECT_CONNECTOR_BUS__KIND": "kafka",
                              "HUBJECT_CONNECTOR_HUBJECT__ENVIRONMENT": "staging"})
    assert "'embedded', 'rabbitmq'" in errors["bus.kind"]
    assert "'kafka'" in errors["bus.kind"]
    assert "'qa', 'production'" in errors["hubject.environment"]


@pytest.mark.parametrize("operator_id", ["DE*AB", "DEABCD1", "49-123", "de*abc*", "D1*ABC"])
def test_operator_id_must_match_its_pattern(operator_id: str) -> None:
    errors = errors_of(None, {"HUBJECT_CONNECTOR_HUBJECT__OPERATOR_ID": operator_id})
    assert "OperatorID pattern" in errors["hubject.operator_id"]


def test_operator_id_with_a_trailing_newline_is_refused(write_toml: WriteToml) -> None:
    # re.match(...$) would accept it; the pattern is matched whole (design.md, pitfalls).
    errors = errors_of(write_toml('[hubject]\noperator_id = "DE*ABC\\n"\n'))
    assert "OperatorID pattern" in errors["hubject.operator_id"]


@pytest.mark.parametrize("operator_id", ["DE*ABC", "DEABC", "+49*123", "49*123", "de*a1c"])
def test_valid_operator_ids_load(operator_id: str) -> None:
    env = {"HUBJECT_CONNECTOR_HUBJECT__OPERATOR_ID": operator_id}
    assert load_config(None, env).hubject.operator_id == operator_id


def test_rate_limits_must_name_outbound_operations_and_be_positive(
    write_toml: WriteToml,
) -> None:
    path = write_toml(
        """
        [hubject.rate_limits]
        pushevsedata = 100
        PushEvseStats = 10
        AuthorizeStop = 0
        AuthorizeRemoteStart = 5
        ChargeDetailRecord = "many"
        """
    )
    errors = errors_of(path)
    assert "did you mean 'PushEvseStatus'" in errors["hubject.rate_limits.PushEvseStats"]
    assert "positive" in errors["hubject.rate_limits.AuthorizeStop"]
    assert "called by Hubject" in errors["hubject.rate_limits.AuthorizeRemoteStart"]
    assert "integer" in errors["hubject.rate_limits.ChargeDetailRecord"]
    assert "hubject.rate_limits.pushevsedata" not in errors


def test_rate_limit_names_match_ignoring_case(write_toml: WriteToml) -> None:
    path = write_toml("[hubject.rate_limits]\npushevsedata = 100\nPUSHEVSEPRICING = 3\n")
    limits = load_config(path, {}).hubject.rate_limits
    assert limits == {"PushEvseData": 100, "PushEVSEPricing": 3}


def test_rate_limits_cannot_be_set_as_one_variable() -> None:
    errors = errors_of(None, {"HUBJECT_CONNECTOR_HUBJECT__RATE_LIMITS": "PushEvseData=1"})
    assert "HUBJECT_CONNECTOR_HUBJECT__RATE_LIMITS__PUSHEVSESTATUS" in errors[
        "hubject.rate_limits"
    ]


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("HUBJECT_CONNECTOR_OPS__PORT", "65536", "ops.port"),
        ("HUBJECT_CONNECTOR_INBOUND__PORT", "-1", "inbound.port"),
        ("HUBJECT_CONNECTOR_BUS__EMBEDDED__HTTP_PORT", "100000", "bus.embedded.http_port"),
    ],
)
def test_ports_must_be_in_range(variable: str, value: str, key: str) -> None:
    errors = errors_of(None, {variable: value})
    assert "port number from 0 to 65535" in errors[key]


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("HUBJECT_CONNECTOR_HUBJECT__BASE_URL", "ftp://hubject.example/api", "hubject.base_url"),
        ("HUBJECT_CONNECTOR_HUBJECT__BASE_URL", "service.hubject.com", "hubject.base_url"),
        ("HUBJECT_CONNECTOR_BUS__RABBITMQ__URL", "http://broker:5672/", "bus.rabbitmq.url"),
        ("HUBJECT_CONNECTOR_BUS__RABBITMQ__URL", "amqp://", "bus.rabbitmq.url"),
        ("HUBJECT_CONNECTOR_BUS__EMBEDDED__WEBHOOK_URL", "amqp://x/", "bus.embedded.webhook_url"),
    ],
)
def test_urls_need_the_right_scheme_and_a_host(variable: str, value: str, key: str) -> None:
    errors = errors_of(None, {variable: value})
    assert "must be a URL starting with" in errors[key]


def test_urls_with_the_right_scheme_load() -> None:
    env = {
        "HUBJECT_CONNECTOR_HUBJECT__BASE_URL": "https://127.0.0.1:8081/api/oicp",
        "HUBJECT_CONNECTOR_BUS__RABBITMQ__URL": "amqps://user@broker.example:5671/%2F",
        "HUBJECT_CONNECTOR_BUS__EMBEDDED__WEBHOOK_URL": "https://backend.example/commands",
    }
    config = load_config(None, env)
    assert config.hubject.url == "https://127.0.0.1:8081/api/oicp"


def test_value_rules() -> None:
    env = {
        "HUBJECT_CONNECTOR_HUBJECT__TIMEOUT_SECONDS": "0",
        "HUBJECT_CONNECTOR_HUBJECT__RETRY__ATTEMPTS": "0",
        "HUBJECT_CONNECTOR_HUBJECT__RETRY__INITIAL_DELAY_SECONDS": "10",
        "HUBJECT_CONNECTOR_HUBJECT__RETRY__MAX_DELAY_SECONDS": "5",
        "HUBJECT_CONNECTOR_BUS__RABBITMQ__PREFETCH": "0",
        "HUBJECT_CONNECTOR_INBOUND__PATH_PREFIX": "api/oicp",
        "HUBJECT_CONNECTOR_INBOUND__ALLOW_IPS": "10.0.0.0/8,not-an-ip",
        "HUBJECT_CONNECTOR_INBOUND__REPLY_DEADLINE_SECONDS": "10",
        "HUBJECT_CONNECTOR_BUS__REQUEST_TIMEOUT_SECONDS": "nan",
    }
    errors = errors_of(None, env)
    assert "above 0" in errors["hubject.timeout_seconds"]
    assert "at least 1" in errors["hubject.retry.attempts"]
    assert "initial_delay_seconds" in errors["hubject.retry.max_delay_seconds"]
    assert "at least 1" in errors["bus.rabbitmq.prefetch"]
    assert "start with '/'" in errors["inbound.path_prefix"]
    assert "'not-an-ip'" in errors["inbound.allow_ips[1]"]
    assert "10 s" in errors["inbound.reply_deadline_seconds"]
    assert "number" in errors["bus.request_timeout_seconds"]


def test_every_duration_must_be_positive() -> None:
    # Durations are checked by their *_seconds name, so new settings get the rule too.
    env = {
        "HUBJECT_CONNECTOR_HUBJECT__CONNECT_TIMEOUT_SECONDS": "-1",
        "HUBJECT_CONNECTOR_HUBJECT__CERT_RELOAD_INTERVAL_SECONDS": "0",
        "HUBJECT_CONNECTOR_BUS__REQUEST_TIMEOUT_SECONDS": "0",
        "HUBJECT_CONNECTOR_HUBJECT__RETRY__INITIAL_DELAY_SECONDS": "-0.5",
    }
    errors = errors_of(None, env)
    assert "above 0" in errors["hubject.connect_timeout_seconds"]
    assert "above 0" in errors["hubject.cert_reload_interval_seconds"]
    assert "above 0" in errors["bus.request_timeout_seconds"]
    assert "negative" in errors["hubject.retry.initial_delay_seconds"]
    # Retrying at once is allowed.
    ok = {"HUBJECT_CONNECTOR_HUBJECT__RETRY__INITIAL_DELAY_SECONDS": "0"}
    assert load_config(None, ok).hubject.retry.initial_delay_seconds == 0.0


def test_a_certificate_needs_its_key() -> None:
    errors = errors_of(None, {"HUBJECT_CONNECTOR_HUBJECT__CLIENT_CERT": "client.crt",
                              "HUBJECT_CONNECTOR_INBOUND__TLS_KEY": "server.key"})
    assert "is missing" in errors["hubject.client_key"]
    assert "is missing" in errors["inbound.tls_cert"]


def test_secrets_are_refused_as_values(write_toml: WriteToml) -> None:
    path = write_toml(
        """
        [hubject]
        client_key = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\n-----END PRIVATE KEY-----"
        [bus.rabbitmq]
        password = "guest"
        """
    )
    errors = errors_of(path, {"HUBJECT_CONNECTOR_INBOUND__TLS_CERT": "server.crt",
                              "HUBJECT_CONNECTOR_INBOUND__TLS_KEY":
                                  "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE"})
    assert "private key pasted" in errors["hubject.client_key"]
    assert "private key pasted" in errors["inbound.tls_key"]
    assert "password_file" in errors["bus.rabbitmq.password"]
    # The pasted key is never echoed back in an error.
    assert all("MIIEvQIBADANBg" not in m and "MHcCAQEE" not in m for m in errors.values())


def test_all_errors_are_reported_at_once(write_toml: WriteToml) -> None:
    path = write_toml('[hubject]\noperator_id = "nope"\n[ops]\nport = 99999\n')
    with pytest.raises(ConfigErrors) as info:
        load_config(path, {"HUBJECT_CONNECTOR_BUS__KIND": "kafka"})
    error = info.value
    assert isinstance(error, ConfigError)
    assert [e.key for e in error.errors] == ["bus.kind", "hubject.operator_id", "ops.port"]
    lines = str(error).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("bus.kind: must be one of")
    assert all(isinstance(e, ConfigError) for e in error.errors)


def test_files_are_not_checked_unless_asked(tmp_path: Path) -> None:
    env = {"HUBJECT_CONNECTOR_HUBJECT__CLIENT_CERT": str(tmp_path / "client.crt"),
           "HUBJECT_CONNECTOR_HUBJECT__CLIENT_KEY": str(tmp_path / "client.key")}
    assert load_config(None, env).hubject.client_key == tmp_path / "client.key"
    errors = errors_of(None, env, check_files=True)
    assert "does not exist" in errors["hubject.client_key"]
    assert "does not exist" in errors["hubject.client_cert"]


def test_existing_readable_files_pass_the_check(tmp_path: Path) -> None:
    (tmp_path / "client.crt").write_text("cert")
    (tmp_path / "client.key").write_text("key")
    (tmp_path / "password").write_text("secret")
    env = {"HUBJECT_CONNECTOR_HUBJECT__CLIENT_CERT": str(tmp_path / "client.crt"),
           "HUBJECT_CONNECTOR_HUBJECT__CLIENT_KEY": str(tmp_path / "client.key"),
           "HUBJECT_CONNECTOR_BUS__RABBITMQ__PASSWORD_FILE": str(tmp_path / "password")}
    config = load_config(None, env, check_files=True)
    assert config.bus.rabbitmq.password_file == tmp_path / "password"


def test_a_folder_is_not_a_key_file(tmp_path: Path) -> None:
    env = {"HUBJECT_CONNECTOR_BUS__RABBITMQ__PASSWORD_FILE": str(tmp_path)}
    errors = errors_of(None, env, check_files=True)
    assert "is not a file" in errors["bus.rabbitmq.password_file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_key_file_is_an_error(tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("key")
    key.chmod(0)
    try:
        env = {"HUBJECT_CONNECTOR_BUS__RABBITMQ__PASSWORD_FILE": str(key)}
        errors = errors_of(None, env, check_files=True)
        assert "not readable" in errors["bus.rabbitmq.password_file"]
    finally:
        key.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_a_section_cannot_be_set_as_one_variable() -> None:
    errors = errors_of(None, {"HUBJECT_CONNECTOR_BUS__RABBITMQ": "amqp://x"})
    assert "is a section" in errors["bus.rabbitmq"]


def test_a_setting_is_not_a_section() -> None:
    errors = errors_of(None, {"HUBJECT_CONNECTOR_OPS__PORT__NUMBER": "1"})
    assert "not a section" in errors["ops.port.number"]
