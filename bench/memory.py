"""Resident memory of ``hubject-connector serve``: idle, and with 100,000 EVSEs known.

Each case runs ``serve`` as a process of its own (as in a container) against the
simulator (its own process, mutual TLS) and reads its RSS (VmRSS) and peak (VmHWM) from
/proc after it has been ready and idle for a while:

* idle, empty state store: on the embedded bus (the default) and on RabbitMQ;
* 100,000 EVSEs known: the SQLite state store filled through the store API before the
  start (each EVSE's data record as Hubject holds it, and its latest status, pushed),
  then idle; then one status change of a known EVSE, pushed as an update, which the
  simulator (holding none of them) refuses as an update of a record it lacks (022), so
  that the connector sends every latest status again as one fullLoad (100,000 records):
  the RSS after it and the peak.

Baseline: the interpreter with the connector's main libraries imported (aiohttp,
aio-pika, marshmallow, jsonschema, prometheus_client, structlog, asyncpg), idle.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import aiohttp

from bench.contract_codec import CONTEXT, contract_examples
from bench.harness import (
    OPERATOR_ID,
    Report,
    ServeProcess,
    common_options,
    connector_config,
    delete_topology,
    free_port,
    log_to,
    rabbitmq_bus,
    run,
    sqlite_state,
    unique_name,
    workspace,
)
from bench.simulator_process import SimulatorProcess
from hubject_connector.bus.contract import MessageType
from hubject_connector.certs import DevPki
from hubject_connector.config import (
    BusConfig,
    EmbeddedBusConfig,
    FlowsConfig,
    StateConfig,
)
from hubject_connector.flows.evse import record_json
from hubject_connector.state.base import EvseEntry, StatusChange
from hubject_connector.state.factory import build_store
from hubject_connector.translate import outbound

GOAL_MIB: Final = 100.0
BASELINE_CODE: Final = (
    "import asyncio, aiohttp, aio_pika, marshmallow, jsonschema, prometheus_client, "
    "structlog, asyncpg\n"
    "print('ready', flush=True)\n"
    "asyncio.run(asyncio.sleep(3600))\n"
)


def vm(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MiB."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return found["VmRSS"], found["VmHWM"]


async def baseline_rss(idle: float) -> float:
    """RSS of the interpreter with the main libraries imported, idle (MiB)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", BASELINE_CODE, stdout=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        await asyncio.wait_for(process.stdout.readline(), 60)
        await asyncio.sleep(idle)
        return vm(process.pid)[0]
    finally:
        process.kill()
        await process.wait()


def made(directory: Path) -> Path:
    """``directory``, created."""
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def embedded_bus(directory: Path) -> BusConfig:
    """The embedded bus (the default), its HTTP API on a free port."""
    return BusConfig(kind="embedded", embedded=EmbeddedBusConfig(
        path=directory / "bus.sqlite3", http_host="127.0.0.1", http_port=free_port()))


async def fill(state: StateConfig, count: int) -> None:
    """``count`` EVSEs as Hubject holds them, each with its latest status pushed."""
    example = contract_examples()[str(MessageType.EVSE_UPSERT)]["data"]["evse"]
    now = datetime.now(UTC)
    store = build_store(state)
    await store.open()
    try:
        # One record translated as the flow does it; the others are copies of its JSON.
        template = record_json(outbound.evse_record(copy.deepcopy(example), CONTEXT), now)
        entries: list[EvseEntry] = []
        changes: list[StatusChange] = []
        for n in range(count):
            evse_id = f"DE*ABC*EM{n:07d}*1"
            entries.append(EvseEntry(evse_id, OPERATOR_ID, {**template, "EvseID": evse_id}))
            changes.append(StatusChange(evse_id, OPERATOR_ID, "Available", now,
                                        str(uuid.uuid4())))
        await store.replace_evses(OPERATOR_ID, entries)
        for start in range(0, count, 5000):
            part = changes[start:start + 5000]
            await store.record_statuses(part)
            await store.mark_statuses_sent(part)
            # Filled by hand, not through the flows: nobody waits for these results.
            await store.status_results_published([c.message_id for c in part])
    finally:
        await store.close()


async def post_status(bus: BusConfig, evse_id: str) -> None:
    """One status change, posted to the embedded bus as a backend does."""
    document = {
        "specversion": "1.0", "id": str(uuid.uuid4()), "source": "urn:bench:backend",
        "type": str(MessageType.EVSE_STATUS), "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json", "subject": evse_id,
        "data": {"evse_id": evse_id, "status": "Occupied"},
    }
    url = f"http://127.0.0.1:{bus.embedded.http_port}/v1/messages"
    async with aiohttp.ClientSession() as session, session.post(
        url, data=json.dumps(document),
        headers={"Content-Type": "application/cloudevents+json"},
    ) as response:
        if response.status != 202:
            raise RuntimeError(f"the bus answered {response.status}: {await response.text()}")


async def idle_serve(report: Report, label: str, directory: Path, pki: DevPki, bus: BusConfig,
                     idle: float, baseline: float, args: argparse.Namespace) -> float:
    """Start serve with an empty store, let it idle, report its RSS."""
    made(directory)
    flows = FlowsConfig()
    async with SimulatorProcess(pki.directory) as simulator:
        config = connector_config(pki, simulator.url, bus, sqlite_state(directory), flows)
        serve = ServeProcess(config, pki, directory, log_level=args.log_level)
        try:
            await serve.start()
            await asyncio.sleep(idle)
            assert serve.process is not None
            rss, _ = vm(serve.process.pid)
        finally:
            await serve.stop()
            if bus.kind == "rabbitmq":
                await delete_topology(bus, flows)
    report.figure(f"serve idle, empty state, {label}", rss, "MiB", baseline=baseline)
    return rss


async def main(args: argparse.Namespace) -> Report:
    """The benchmark (module doc)."""
    idle = 2.0 if args.quick else args.idle
    count = 1_000 if args.quick else args.evses
    report = Report("Memory of serve (bench/memory.py)",
                    options=(f"RSS after {idle:g} s idle; {count:,} EVSEs known; simulator "
                             f"over mTLS in its own process; log level {args.log_level}"))
    report.note(report.options)
    async with workspace("memory") as (directory, pki):
        log_to(directory / "bench.log", args.log_level)
        baseline = await baseline_rss(idle)
        report.figure("baseline: python with aiohttp, aio-pika, marshmallow, jsonschema, "
                      "prometheus_client, structlog, asyncpg imported, idle", baseline, "MiB")
        rss = await idle_serve(report, "embedded bus", directory / "idle-embedded", pki,
                               embedded_bus(directory), idle, baseline, args)
        report.goal(f"idle RSS under {GOAL_MIB:g} MiB (embedded bus)", rss < GOAL_MIB)
        if not args.no_rabbitmq:
            rss = await idle_serve(report, "RabbitMQ", directory / "idle-rabbitmq", pki,
                                   rabbitmq_bus(unique_name("memory")), idle, baseline, args)
            report.goal(f"idle RSS under {GOAL_MIB:g} MiB (RabbitMQ)", rss < GOAL_MIB)

        # 100,000 EVSEs known.
        folder = made(directory / "known")
        state = sqlite_state(folder)
        started = time.monotonic()
        await fill(state, count)
        report.note(f"state store filled with {count:,} EVSEs (data record and pushed "
                    f"status each) in {time.monotonic() - started:.1f} s")
        bus = embedded_bus(folder)
        async with SimulatorProcess(pki.directory) as simulator:
            config = connector_config(pki, simulator.url, bus, state, FlowsConfig())
            serve = ServeProcess(config, pki, folder, log_level=args.log_level)
            try:
                await serve.start()
                await asyncio.sleep(idle)
                assert serve.process is not None
                known, _ = vm(serve.process.pid)
                report.figure(f"serve idle, {count:,} EVSEs known (embedded bus)", known,
                              "MiB", baseline=baseline)
                # Known to the store as held by Hubject (an update), unknown to the
                # simulator: refused, then the fullLoad.
                await post_status(bus, "DE*ABC*EM0000000*1")
                deadline = time.monotonic() + 300
                while len(await simulator.evse_status(OPERATOR_ID)) < count:
                    if time.monotonic() > deadline:
                        raise TimeoutError("the fullLoad did not reach the simulator in time")
                    await asyncio.sleep(0.2)
                await asyncio.sleep(idle)
                after, peak = vm(serve.process.pid)
                report.figure(f"serve after a fullLoad of {count:,} statuses, idle again",
                              after, "MiB", baseline=baseline)
                report.figure("serve peak RSS (VmHWM) over the run", peak, "MiB",
                              baseline=baseline)
                report.check("the fullLoad carried every known EVSE's status",
                             len(await simulator.evse_status(OPERATOR_ID)) == count,
                             f"{count:,} statuses at the simulator")
            finally:
                await serve.stop()
    return report


def parser() -> argparse.ArgumentParser:
    """The command line."""
    made = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    made.add_argument("--evses", type=int, default=100_000, help="EVSEs known (100,000)")
    made.add_argument("--idle", type=float, default=10.0, help="seconds idle before reading")
    made.add_argument("--no-rabbitmq", action="store_true",
                      help="measure the embedded bus only")
    common_options(made)
    return made


if __name__ == "__main__":
    run(main, parser())
