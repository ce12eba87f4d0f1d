"""CDRs through the connector with durable bookkeeping, and the burst of issue 7 under faults.

1. Throughput, on the SQLite and on the PostgreSQL state store (a schema of its own in
   ``postgresql://postgres@127.0.0.1:5432/test``): N CDRs (default 2,000) wait in the
   connector's ``cdr`` queue, then the connector (Flows on RabbitMQ, the Hubject client
   over mutual TLS to the simulator in its own process, Hubject's rate limits lifted so
   that the connector is measured, not the waiting) carries each to Hubject, recording
   it before and after the call (exactly once per SessionID). Baseline: a raw aio-pika
   consumer that only acks the same number of the same messages from the same queue,
   before and after.
2. The burst: 1,000 CDRs while the simulator fails 30% of CDR calls, with HTTP 503 or by
   dropping the connection after processing (Hubject stored it, the answer is lost).
   Checked: all 1,000 at Hubject, each exactly once; a delivery result for each; nothing
   sent again after Hubject's answer had arrived.
3. The same burst with ``hubject-connector serve`` in a process of its own, killed with
   SIGKILL when about half the CDRs are at Hubject, then started again on the same state:
   the same checks (a CDR whose answer died with the process is sent again, and Hubject's
   "already exists" for it counts as accepted).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aio_pika.abc

from bench.contract_codec import contract_examples
from bench.harness import (
    Connector,
    Profile,
    Report,
    ResultCount,
    ServeProcess,
    Timing,
    collect_until,
    common_options,
    connector_config,
    delete_topology,
    drain_raw,
    drop_state,
    log_to,
    postgres_state,
    publish_raw,
    rabbitmq_bus,
    result_data,
    run,
    sqlite_state,
    unique_name,
    unlimited_rates,
    wait_until,
    workspace,
)
from bench.simulator_process import Call, SimulatorProcess
from hubject_connector.bus.contract import MessageType
from hubject_connector.bus.rabbitmq import RabbitMQNames
from hubject_connector.certs import DevPki
from hubject_connector.config import BusConfig, FlowsConfig, RetryConfig, StateConfig
from hubject_connector.simulator import FaultKind

CDR: Final = str(MessageType.CDR)
FLOW: Final = "cdr"
OPERATION: Final = "ChargeDetailRecord"
#: The simulator's answers lifted from Hubject's limits: the connector is measured.
UNLIMITED_SIMULATOR: Final = {"rate_limits": {OPERATION: None}}
#: Quick retries for the burst: it shows what is retried, not how long it waits.
BURST_RETRY: Final = RetryConfig(attempts=3, initial_delay_seconds=0.05, max_delay_seconds=0.5)
BURST_FLOWS: Final = FlowsConfig(cdr_retry_for_seconds=900.0,
                                 cdr_retry_initial_delay_seconds=0.5,
                                 cdr_retry_max_delay_seconds=2.0)


@dataclass
class CdrPlan:
    """The CDRs to publish (the documented example, a new SessionID each)."""

    template: dict[str, Any]
    ids: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)

    def messages(self, count: int) -> list[tuple[str, Callable[[], tuple[str, bytes]]]]:
        """``count`` new CDRs (routing key, make)."""
        return [(CDR, self._cdr) for _ in range(count)]

    def _cdr(self) -> tuple[str, bytes]:
        document = copy.deepcopy(self.template)
        session = str(uuid.uuid4())
        message_id = str(uuid.uuid4())
        document.update(id=message_id, subject=session, time=datetime.now(UTC).isoformat(),
                        source="urn:bench:backend")
        document["data"]["session_id"] = session
        self.ids.append(message_id)
        self.sessions.append(session)
        return message_id, json.dumps(document, separators=(",", ":")).encode()


def sent_after_answer(calls: list[Call]) -> int:
    """CDR calls made for a SessionID after the connector had received Hubject's 000."""
    by_session: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        by_session[str(call.items[0])].append(call)
    again = 0
    for session_calls in by_session.values():
        answered: float | None = None
        for call in sorted(session_calls, key=lambda c: c.received):
            if answered is not None and call.received > answered:
                again += 1
            if (answered is None and call.status_code == "000" and call.http_status == 200
                    and call.fault is None and call.answered is not None):
                answered = call.answered
    return again


def describe_calls(calls: list[Call]) -> str:
    """CDR calls by answer."""
    kinds = Counter(call.fault or f"{call.http_status} {call.status_code}" for call in calls)
    return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))


async def check_burst(report: Report, simulator: SimulatorProcess, bus: BusConfig,
                      plan: CdrPlan, *, killed: bool) -> None:
    """The checks of a burst: at Hubject once each, a result each, nothing sent again."""
    names = RabbitMQNames(bus.rabbitmq)
    wanted = set(plan.ids)
    answered: set[str] = set()

    def enough(found: list[aio_pika.abc.AbstractIncomingMessage]) -> bool:
        answered.add(json.loads(found[-1].body)["data"]["message_id"])
        return wanted <= answered

    results = result_data(await collect_until(
        bus.rabbitmq.url, names.queue("backend.results"), enough, give_up_after=120.0))
    calls = await simulator.calls(OPERATION)
    held = set(await simulator.cdr_sessions())
    counted = ResultCount.of(wanted, results)
    report.note(f"CDR calls: {len(calls)} ({describe_calls(calls)})")
    report.check("all CDRs at Hubject, each exactly once",
                 held == set(plan.sessions) and len(plan.sessions) == len(set(plan.sessions)),
                 f"{len(held & set(plan.sessions))} of {len(plan.sessions)} held")
    report.check("one delivery result for each CDR, every one accepted",
                 counted.missing == 0 and counted.several == 0
                 and set(counted.outcomes) == {"accepted"}, counted.describe())
    again = sent_after_answer(calls)
    if killed:
        report.note(f"CDRs sent again after Hubject's answer had arrived: {again} (the "
                    "kill loses answers not yet recorded; Hubject's 'already exists' for "
                    "them counts as accepted)")
    else:
        report.check("no CDR sent again once Hubject's answer had arrived", again == 0,
                     f"{again} sent again")


async def throughput(args: argparse.Namespace, report: Report, directory: Path, pki: DevPki,
                     state: StateConfig, count: int) -> None:
    """Part 1 on one store (module doc)."""
    bus = rabbitmq_bus(unique_name("cdr"))
    url, exchange = bus.rabbitmq.url, bus.rabbitmq.exchange
    queue = RabbitMQNames(bus.rabbitmq).queue(FLOW)
    prefetch = bus.rabbitmq.prefetch
    flows = FlowsConfig()
    template = contract_examples()[CDR]
    async with SimulatorProcess(pki.directory, **UNLIMITED_SIMULATOR) as simulator:
        config = connector_config(pki, simulator.url, bus, state, flows,
                                  rate_limits=unlimited_rates())
        connector = Connector(config)
        try:
            await connector.connect()
            await publish_raw(url, exchange, CdrPlan(template).messages(count))
            before = report.rates(f"{state.kind}: baseline before, raw aio-pika ack-only "
                                  "consumer", count,
                                  await drain_raw(url, queue, count, prefetch=prefetch))
            plan = CdrPlan(template)
            await publish_raw(url, exchange, plan.messages(count))
            wall, cpu = time.time(), time.process_time()
            with Profile(args.profile):
                await connector.start()
                done = await wait_until(lambda: connector.outcomes(FLOW) >= count,
                                        f"a result for each of {count} CDRs",
                                        give_up_after=max(120.0, count / 5))
            timing = Timing(done - wall, time.process_time() - cpu)
            await connector.stop()
            await publish_raw(url, exchange, CdrPlan(template).messages(count))
            after = report.rates(f"{state.kind}: baseline after", count,
                                 await drain_raw(url, queue, count, prefetch=prefetch))
            baseline = ((before[0] + after[0]) / 2, (before[1] + after[1]) / 2)
            report.rates(f"{state.kind}: connector, CDRs carried to Hubject (each recorded, "
                         "sent, recorded, with its result)", count, timing, baseline)
            held = set(await simulator.cdr_sessions())
            report.check(f"{state.kind}: every CDR at Hubject", held == set(plan.sessions),
                         f"{len(held & set(plan.sessions))} of {count}")
        finally:
            await connector.stop()
            await delete_topology(bus, flows)
            await drop_state(state)


async def burst(args: argparse.Namespace, report: Report, directory: Path, pki: DevPki,
                count: int) -> None:
    """Part 2 (module doc): the connector in this process."""
    bus = rabbitmq_bus(unique_name("cdr-burst"))
    state = sqlite_state(directory / "burst")
    (directory / "burst").mkdir(exist_ok=True)
    template = contract_examples()[CDR]
    async with SimulatorProcess(pki.directory, **UNLIMITED_SIMULATOR) as simulator:
        config = connector_config(pki, simulator.url, bus, state, BURST_FLOWS,
                                  rate_limits=unlimited_rates(), retry=BURST_RETRY)
        connector = Connector(config)
        try:
            await connector.start()
            await simulator.fail_percentage(30, [FaultKind.HTTP_503,
                                                 FaultKind.DROP_AFTER_PROCESSING],
                                            operation=OPERATION)
            plan = CdrPlan(template)
            first = time.time()
            await publish_raw(bus.rabbitmq.url, bus.rabbitmq.exchange, plan.messages(count))
            done = await wait_until(lambda: connector.outcomes(FLOW) >= count,
                                    f"a result for each of {count} CDRs",
                                    give_up_after=max(300.0, count))
            report.figure(f"burst: {count:,} CDRs, 30% of calls failing, from the first "
                          "published to the last result", done - first, "s", digits=2)
            retried = connector.metric("hubject_connector_flow_messages_retried_total",
                                       flow=FLOW)
            report.note(f"burst: {retried:.0f} delayed retries by the flow (the client's own "
                        "quick retries not counted)")
            await check_burst(report, simulator, bus, plan, killed=False)
        finally:
            await connector.stop()
            await delete_topology(bus, BURST_FLOWS)


async def burst_killed(args: argparse.Namespace, report: Report, directory: Path, pki: DevPki,
                       count: int) -> None:
    """Part 3 (module doc): ``serve``, killed halfway, started again."""
    bus = rabbitmq_bus(unique_name("cdr-kill"))
    folder = directory / "kill"
    folder.mkdir(exist_ok=True)
    state = sqlite_state(folder)
    template = contract_examples()[CDR]
    async with SimulatorProcess(pki.directory, **UNLIMITED_SIMULATOR) as simulator:
        config = connector_config(pki, simulator.url, bus, state, BURST_FLOWS,
                                  rate_limits=unlimited_rates(), retry=BURST_RETRY)
        first = ServeProcess(config, pki, folder, log_level=args.log_level)
        second = ServeProcess(config, pki, folder, log_level=args.log_level)
        try:
            await first.start()
            await simulator.fail_percentage(30, [FaultKind.HTTP_503,
                                                 FaultKind.DROP_AFTER_PROCESSING],
                                            operation=OPERATION)
            plan = CdrPlan(template)
            started = time.time()
            await publish_raw(bus.rabbitmq.url, bus.rabbitmq.exchange, plan.messages(count))
            half = count // 2
            while await simulator.cdr_count() < half:
                if time.time() - started > max(300.0, count):
                    raise TimeoutError("half the CDRs did not reach Hubject in time")
                await asyncio.sleep(0.05)
            held_at_kill = await simulator.cdr_count()
            await first.kill()
            report.note(f"kill -9: serve killed with {held_at_kill} of {count:,} CDRs at "
                        "Hubject; started again on the same state and queues")
            await second.start()
            while await simulator.cdr_count() < count:
                if time.time() - started > max(600.0, 2 * count):
                    break
                await asyncio.sleep(0.1)
            report.figure("kill -9: from the first CDR published to the last at Hubject",
                          time.time() - started, "s", digits=2)
            await check_burst(report, simulator, bus, plan, killed=True)
        finally:
            await first.stop()
            await second.stop()
            await delete_topology(bus, BURST_FLOWS)


async def main(args: argparse.Namespace) -> Report:
    """The benchmark (module doc)."""
    count = 40 if args.quick else args.cdrs
    bursting = 40 if args.quick else args.burst
    stores = [s for s in args.stores.split(",") if s]
    report = Report(
        "CDR throughput and the CDR burst under faults (bench/cdr_throughput.py)",
        options=(f"{count:,} CDRs per store ({', '.join(stores)}); burst of {bursting:,} "
                 "with 30% of calls failing (503 or connection dropped after processing), "
                 "in process and as serve killed halfway; RabbitMQ; simulator over mTLS in "
                 "its own process; Hubject's rate limits lifted; log level "
                 f"{args.log_level}"),
    )
    report.note(report.options)
    async with workspace("cdr") as (directory, pki):
        log_to(directory / "connector.log", args.log_level)
        for kind in stores:
            folder = directory / kind
            folder.mkdir()
            state = sqlite_state(folder) if kind == "sqlite" else postgres_state()
            await throughput(args, report, folder, pki, state, count)
        if bursting:
            await burst(args, report, directory, pki, bursting)
            if not args.no_kill:
                await burst_killed(args, report, directory, pki, bursting)
    return report


def parser() -> argparse.ArgumentParser:
    """The command line."""
    made = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    made.add_argument("--cdrs", type=int, default=2_000, help="CDRs per store (2,000)")
    made.add_argument("--stores", default="sqlite,postgresql",
                      help="state stores to measure, comma-separated (sqlite,postgresql)")
    made.add_argument("--burst", type=int, default=1_000,
                      help="CDRs of the burst under faults (1,000; 0 skips it)")
    made.add_argument("--no-kill", action="store_true",
                      help="skip the burst with serve killed halfway")
    common_options(made)
    return made


if __name__ == "__main__":
    run(main, parser())
