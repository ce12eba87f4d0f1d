"""``hubject-connector dlq`` as an operator runs it, on each bus, beside a running connector."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.integration.flows import messages
from tests.integration.flows.conftest import FlowEnv, eventually

SCRIPT = Path(sys.executable).with_name("hubject-connector")
EVSE = "DE*ABC*E123456*2"


def write_config(env: FlowEnv, path: Path) -> Path:
    """The bus and flows settings of the test's connector, as a TOML file."""
    bus = env.config.bus
    rabbit = bus.rabbitmq
    flows = env.config.flows
    delays = ", ".join(str(d) for d in bus.retry_delays_seconds)
    path.write_text(
        "[bus]\n"
        f'kind = "{bus.kind}"\n'
        f"retry_delays_seconds = [{delays}]\n"
        "[bus.embedded]\n"
        f'path = "{bus.embedded.path}"\n'
        "http_port = 0\n"
        "[bus.rabbitmq]\n"
        f'url = "{rabbit.url}"\n'
        f'exchange = "{rabbit.exchange}"\n'
        f'queue_prefix = "{rabbit.queue_prefix}"\n'
        f'dead_letter_exchange = "{rabbit.dead_letter_exchange}"\n'
        f'connection_name = "{rabbit.connection_name}-cli"\n'
        "[flows]\n"
        f"cdr_retry_for_seconds = {flows.cdr_retry_for_seconds}\n"
        f"cdr_retry_initial_delay_seconds = {flows.cdr_retry_initial_delay_seconds}\n"
        f"cdr_retry_max_delay_seconds = {flows.cdr_retry_max_delay_seconds}\n",
        encoding="utf-8",
    )
    return path


async def dlq(config: Path, *args: str) -> tuple[int, str, str]:
    """Run ``hubject-connector dlq ARGS``: exit code, stdout, stderr."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HUBJECT_CONNECTOR_")}
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), "--log-level", "error", "--config", str(config), "dlq", *args,
        env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_list_show_replay_corrected_and_drop(env: FlowEnv, tmp_path: Path) -> None:
    await env.connector()
    backend = env.backend
    config = write_config(env, tmp_path / "connector.toml")
    # A delete of an EVSE the connector holds no record of, and without one: refused, kept.
    refused = messages.delete(EVSE)
    await backend.result(await backend.send(refused))
    (letter,) = await backend.dead_letters()

    code, out, err = await dlq(config, "list")
    assert (code, err) == (0, "")
    assert letter.id in out
    assert "/data/evse: is required" in out
    assert "1 dead letter" in out

    code, out, _ = await dlq(config, "show", letter.id)
    assert code == 0
    assert f"message id:       {refused['id']}" in out
    assert '"evse_id": "DE*ABC*E123456*2"' in out

    code, out, _ = await dlq(config, "list", "--json")
    assert code == 0
    assert [item["id"] for item in json.loads(out)] == [letter.id]

    # An invalid correction is not replayed.
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**refused, "time": "yesterday"}), encoding="utf-8")
    code, _, err = await dlq(config, "replay", letter.id, "--body", str(broken))
    assert code == 1
    assert "/time" in err
    assert [x.id for x in await backend.bus.list_dead_letters()] == [letter.id]

    corrected = json.loads(letter.body)
    corrected["data"]["evse"] = messages.upsert(EVSE)["data"]["evse"]
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(corrected), encoding="utf-8")
    code, out, err = await dlq(config, "replay", letter.id, "--body", str(fixed))
    assert (code, err) == (0, "")
    assert "replayed" in out

    await eventually(lambda: len(backend.results_of(refused["id"])) == 2, "a second result")
    assert backend.results_of(refused["id"])[1].data["outcome"] == "accepted"
    assert env.records("PushEvseData")[0]["ActionType"] == "delete"

    code, out, _ = await dlq(config, "list")
    assert (code, out.strip()) == (0, "no dead letters")


async def test_drop_removes_a_dead_letter_and_unknown_ids_are_reported(
    env: FlowEnv, tmp_path: Path,
) -> None:
    await env.connector()
    backend = env.backend
    config = write_config(env, tmp_path / "connector.toml")
    await backend.result(await backend.send(messages.delete(EVSE)))
    (letter,) = await backend.dead_letters()

    code, out, _ = await dlq(config, "drop", letter.id)
    assert code == 0
    assert letter.id in out
    assert await backend.bus.list_dead_letters() == []

    code, _, err = await dlq(config, "show", letter.id)
    assert code == 1
    assert f"no dead letter with id {letter.id!r}" in err
    code, _, err = await dlq(config, "replay", "no-such-id")
    assert code == 1


async def test_dlq_without_a_subcommand_is_a_usage_error(env: FlowEnv, tmp_path: Path) -> None:
    code, _, err = await dlq(write_config(env, tmp_path / "connector.toml"))
    assert code == 2
    assert "list" in err
    assert "replay" in err

