"""``check-config`` as a user runs it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from hubject_connector.config import REDACTED, load_config
from tests.unit.cli.conftest import REPO, RunCli

EXAMPLE = REPO / "config" / "connector.example.toml"


def test_a_valid_configuration_is_printed_as_toml(run_cli: RunCli) -> None:
    result = run_cli("check-config", "--config", str(EXAMPLE), "--no-check-files")
    assert result.returncode == 0, result.stderr
    printed = tomllib.loads(result.stdout)
    assert printed["hubject"]["operator_id"] == "DE*ABC"
    assert printed["bus"]["retry_delays_seconds"] == [5.0, 30.0, 300.0]


def test_the_printed_toml_loads_back_to_the_same_configuration(
    run_cli: RunCli, tmp_path: Path
) -> None:
    env = {"HUBJECT_CONNECTOR_HUBJECT__RATE_LIMITS__PUSHEVSEDATA": "100",
           "HUBJECT_CONNECTOR_INBOUND__ALLOW_IPS": "10.0.0.0/8",
           "HUBJECT_CONNECTOR_HUBJECT__BASE_URL": "https://127.0.0.1:8444/api/oicp"}
    result = run_cli("check-config", "--config", str(EXAMPLE), env=env)
    assert result.returncode == 0, result.stderr
    printed = tmp_path / "printed.toml"
    printed.write_text(result.stdout, encoding="utf-8")
    assert load_config(printed, {}) == load_config(EXAMPLE, env)


def test_the_global_config_option_and_the_environment_work_too(run_cli: RunCli) -> None:
    before = run_cli("--config", str(EXAMPLE), "check-config", "--format", "json")
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout)["hubject"]["operator_id"] == "DE*ABC"
    from_env = run_cli("check-config", "--format", "json",
                       env={"HUBJECT_CONNECTOR_CONFIG": str(EXAMPLE)})
    assert from_env.returncode == 0, from_env.stderr
    assert json.loads(from_env.stdout) == json.loads(before.stdout)


def test_secrets_are_redacted(run_cli: RunCli, tmp_path: Path) -> None:
    for name in ("client.crt", "client.key", "rabbit-password"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    env = {
        "HUBJECT_CONNECTOR_HUBJECT__CLIENT_CERT": str(tmp_path / "client.crt"),
        "HUBJECT_CONNECTOR_HUBJECT__CLIENT_KEY": str(tmp_path / "client.key"),
        "HUBJECT_CONNECTOR_BUS__RABBITMQ__PASSWORD_FILE": str(tmp_path / "rabbit-password"),
        "HUBJECT_CONNECTOR_BUS__RABBITMQ__URL": "amqp://connector:hunter2@broker:5672/",
    }
    for output in ("toml", "json"):
        result = run_cli("check-config", "--format", output, env=env)
        assert result.returncode == 0, result.stderr
        assert "client.key" not in result.stdout
        assert "rabbit-password" not in result.stdout
        assert "hunter2" not in result.stdout
        assert "client.crt" in result.stdout
        assert REDACTED in result.stdout


def test_errors_are_listed_on_stderr_with_exit_2(run_cli: RunCli, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[hubject]\noperator_id = "XX"\nenvironment = "staging"\n'
                      "[ops]\nprot = 1\n", encoding="utf-8")
    result = run_cli("check-config", "--config", str(config),
                     env={"HUBJECT_CONNECTOR_BUS__KIND": "kafka"})
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert all(line.startswith("hubject-connector: ") for line in lines)
    keys = [line.removeprefix("hubject-connector: ").split(": ", 1)[0] for line in lines]
    assert keys == ["bus.kind", "hubject.environment", "hubject.operator_id", "ops.prot"]
    assert "did you mean 'port'" in lines[3]


def test_missing_files_are_errors_unless_skipped(run_cli: RunCli, tmp_path: Path) -> None:
    env = {"HUBJECT_CONNECTOR_HUBJECT__CLIENT_CERT": str(tmp_path / "client.crt"),
           "HUBJECT_CONNECTOR_HUBJECT__CLIENT_KEY": str(tmp_path / "client.key")}
    checked = run_cli("check-config", env=env)
    assert checked.returncode == 2
    assert "hubject.client_key: file" in checked.stderr
    assert "does not exist" in checked.stderr
    skipped = run_cli("check-config", "--no-check-files", env=env)
    assert skipped.returncode == 0, skipped.stderr


def test_a_missing_configuration_file_is_reported(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("check-config", "--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 2
    assert result.stderr.startswith("hubject-connector: config: cannot read")
