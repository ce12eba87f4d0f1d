"""The command line's skeleton: help, global options, dispatch."""

from __future__ import annotations

import argparse
import json

from hubject_connector import cli
from tests.unit.cli.conftest import REMOTE_START, RunCli


def test_help_lists_the_registered_commands(run_cli: RunCli) -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("check-config", "oicp", "--log-format", "--log-level", "--config"):
        assert command in result.stdout


def test_python_dash_m_runs_the_same_command(run_cli: RunCli) -> None:
    result = run_cli("oicp", "validate", "eRoamingAcknowledgement", "-", module=True,
                     stdin='{"Result": true, "StatusCode": {"Code": "000"}}')
    assert (result.returncode, result.stdout) == (0, "valid\n")


def test_no_command_prints_usage_and_exits_2(run_cli: RunCli) -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert run_cli("oicp").returncode == 2


def test_an_unknown_command_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_every_command_module_registers_a_handler() -> None:
    parser = cli.build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert actions
    for name, subparser in actions[0].choices.items():
        assert callable(subparser.get_default("handler")), name


def test_async_handlers_are_run_to_completion() -> None:
    async def handler(args: argparse.Namespace) -> int:
        return int(args.value)

    assert cli.run(argparse.Namespace(handler=handler, value=3)) == 3
    assert cli.run(argparse.Namespace(handler=lambda args: 0)) == 0


def test_a_bad_logging_setting_is_reported_and_the_cli_still_starts(run_cli: RunCli) -> None:
    result = run_cli("check-config", "--format", "json",
                     env={"HUBJECT_CONNECTOR_LOGGING__LEVEL": "loud"})
    assert result.returncode == 2
    assert result.stderr.startswith("hubject-connector: logging.level: must be one of")
    assert result.stdout == ""


def test_logs_go_to_stderr_as_json_lines_with_ids_masked(run_cli: RunCli) -> None:
    body = json.dumps(REMOTE_START)
    result = run_cli("--log-level", "debug", "oicp", "validate",
                     "eRoamingAuthorizeRemoteStart", "-", stdin=body)
    assert (result.returncode, result.stdout) == (0, "valid\n")
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["event"] for line in lines] == ["validating", "valid"]
    assert lines[1]["level"] == "debug"
    assert "AuthorizeRemoteStart(" in lines[1]["decoded"]
    # Model reprs leave contract IDs out altogether (SECURITY.md).
    assert "CAB123456" not in lines[1]["decoded"]
    assert "DE-8EO-CAB123456-7" not in result.stderr


def test_console_logs_and_the_level_come_from_options_or_environment(run_cli: RunCli) -> None:
    body = json.dumps(REMOTE_START)
    console = run_cli("--log-format", "console", "--log-level", "debug", "oicp", "validate",
                      "eRoamingAuthorizeRemoteStart", "-", stdin=body)
    assert console.returncode == 0
    assert not console.stderr.startswith("{")
    assert "[debug" in console.stderr
    assert "DE-8EO-CAB123456-7" not in console.stderr
    from_env = run_cli("oicp", "validate", "eRoamingAuthorizeRemoteStart", "-", stdin=body,
                       env={"HUBJECT_CONNECTOR_LOGGING__LEVEL": "debug",
                            "HUBJECT_CONNECTOR_LOGGING__FORMAT": "console"})
    assert "[debug" in from_env.stderr
    quiet = run_cli("oicp", "validate", "eRoamingAuthorizeRemoteStart", "-", stdin=body)
    assert quiet.stderr == ""
