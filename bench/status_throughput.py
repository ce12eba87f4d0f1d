"""EVSE status events from RabbitMQ through the connector into the simulator.

A raw aio-pika publisher (as a backend writes it: confirms, ``mandatory``) puts N status
events over E EVSEs (default 50,000 over 5,000) in the connector's ``evse-status``
queue; then the connector (Flows with the RabbitMQ bus, the SQLite state store, the
Hubject client over mutual TLS with the dev PKI) starts and carries them to the fake
Hubject, which runs in a process of its own. Measured:

* events per second, from the connector's start to the last event's result (each event
  gets one: accepted once pushed, or dropped when a newer status of its EVSE overtook it);
* the baseline: a raw aio-pika consumer that only acks N messages from the same queue
  with the same prefetch, run before and after the connector (their mean is the baseline);
* end-to-end delay, p50 and p99, from each pushed event's ``time`` (set when published)
  to Hubject's answer to the push carrying it, from the simulator's records: for the
  backlog (the time waiting in the queue included) and for a paced phase after it
  (events at a steady rate below capacity, where the batching window dominates);
* the PushEvseStatus calls, and the time from the first event to the last push.

Checked: the simulator's final state equals the latest status of every EVSE; no two
pushes overlapped; no minute over Hubject's limit; one delivery result per event.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import functools
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from bench.harness import (
    OPERATOR_ID,
    Connector,
    Profile,
    Report,
    ResultCount,
    Timing,
    clocks,
    collect_until,
    common_options,
    connector_config,
    delete_topology,
    drain_bus,
    drain_raw,
    log_to,
    percentile,
    publish_raw,
    rabbitmq_bus,
    result_data,
    run,
    sqlite_state,
    unique_name,
    wait_until,
    workspace,
)
from bench.simulator_process import Call, SimulatorProcess
from hubject_connector.bus.contract import MessageType
from hubject_connector.bus.rabbitmq import RabbitMQNames
from hubject_connector.bus.topology import queue_spec
from hubject_connector.config import FlowsConfig
from hubject_connector.flows.engine import MAX_STATUS_PREFETCH, MIN_STATUS_PREFETCH
from hubject_connector.oicp.operations import OPERATIONS

EVSE_STATUS: Final = str(MessageType.EVSE_STATUS)
STATUSES: Final = ("Available", "Occupied", "Reserved", "OutOfService")
FLOW: Final = "evse-status"
OPERATION: Final = "PushEvseStatus"


def evse_ids(count: int) -> list[str]:
    """``count`` EvseIDs of the operator."""
    return [f"DE*ABC*EB{n:07d}*1" for n in range(count)]


@dataclass
class StatusPlan:
    """The events to publish, and what was published: per EVSE, times and statuses."""

    evses: list[str]
    seed: int = 12
    ids: list[str] = field(default_factory=list)
    times: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, list[str]] = field(default_factory=dict)
    first: float | None = None

    def messages(self, count: int) -> list[tuple[str, Callable[[], tuple[str, bytes]]]]:
        """``count`` events (routing key, make) over the EVSEs, drawn at random (seeded)."""
        rng = random.Random(self.seed + len(self.ids))
        picks = [(rng.choice(self.evses), rng.choice(STATUSES)) for _ in range(count)]
        return [(EVSE_STATUS, functools.partial(self._event, evse, status))
                for evse, status in picks]

    def _event(self, evse: str, status: str) -> tuple[str, bytes]:
        now = time.time()
        times = self.times.setdefault(evse, [])
        # Strictly later than the EVSE's previous event: the latest time wins.
        at = max(now, times[-1] + 1e-6) if times else now
        times.append(at)
        self.statuses.setdefault(evse, []).append(status)
        if self.first is None:
            self.first = at
        message_id = str(uuid.uuid4())
        self.ids.append(message_id)
        body = {
            "specversion": "1.0", "id": message_id, "source": "urn:bench:backend",
            "type": EVSE_STATUS, "time": datetime.fromtimestamp(at, UTC).isoformat(),
            "datacontenttype": "application/json", "subject": evse,
            "data": {"evse_id": evse, "status": status},
        }
        return message_id, json.dumps(body, separators=(",", ":")).encode()

    def expected(self) -> dict[str, str]:
        """The latest status of every EVSE that had an event."""
        return {evse: statuses[-1] for evse, statuses in self.statuses.items()}

    def delays(self, calls: list[Call], since: float = 0.0) -> list[float]:
        """Seconds from each pushed event's time to the answer of the push carrying it.

        An event is the one carried when it is its EVSE's latest published before the
        push arrived with the same status; each event counts once (a later fullLoad
        carrying it again does not).
        """
        counted: set[tuple[str, int]] = set()
        found: list[float] = []
        for call in sorted(calls, key=lambda c: c.received):
            if call.status_code != "000" or call.answered is None:
                continue
            for evse, status in call.items:
                times = self.times.get(evse, [])
                index = bisect.bisect_right(times, call.received) - 1
                if index < 0 or times[index] < since or (evse, index) in counted:
                    continue
                if self.statuses[evse][index] != status:
                    continue
                counted.add((evse, index))
                found.append(call.answered - times[index])
        return found


async def _progress(connector: Connector) -> None:
    """Print the consumed and settled counts every second (``--progress``)."""
    started = time.monotonic()
    while True:
        await asyncio.sleep(1.0)
        print(f"  {time.monotonic() - started:5.1f} s: {connector.consumed(FLOW):8.0f} taken, "
              f"{connector.outcomes(FLOW):8.0f} with a result", flush=True)


def status_prefetch(flows: FlowsConfig) -> int:
    """The prefetch the connector uses on the status queue (Flows._prefetch)."""
    return max(MIN_STATUS_PREFETCH, min(MAX_STATUS_PREFETCH, flows.status_batch_size))


def describe_calls(calls: list[Call]) -> str:
    """Calls by ActionType and answer."""
    kinds = Counter(f"{c.action} {c.status_code or c.http_status or c.fault}" for c in calls)
    return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))


async def main(args: argparse.Namespace) -> Report:
    """The benchmark (module doc)."""
    events = 500 if args.quick else args.events
    evses = 50 if args.quick else args.evses
    paced = 100 if args.quick else args.paced_events
    rate = 200.0 if args.quick else args.paced_rate
    flows = FlowsConfig()
    prefetch = status_prefetch(flows)
    report = Report(
        "EVSE status throughput (bench/status_throughput.py)",
        options=(f"{events:,} events over {evses:,} EVSEs as a backlog, then {paced:,} paced "
                 f"at {rate:g}/s; RabbitMQ, SQLite state store, simulator over mTLS in its "
                 f"own process; batch size {flows.status_batch_size}, longest wait "
                 f"{flows.status_max_wait_seconds:g} s, prefetch {prefetch}; log level "
                 f"{args.log_level}"),
    )
    report.note(report.options)
    async with workspace("status") as (directory, pki):
        log_to(directory / "connector.log", args.log_level)
        bus = rabbitmq_bus(unique_name("status"))
        url, exchange = bus.rabbitmq.url, bus.rabbitmq.exchange
        queue = RabbitMQNames(bus.rabbitmq).queue(FLOW)
        results_queue = RabbitMQNames(bus.rabbitmq).queue("backend.results")
        async with SimulatorProcess(pki.directory) as simulator:
            config = connector_config(pki, simulator.url, bus, sqlite_state(directory), flows)
            connector = Connector(config)
            try:
                await connector.connect()
                plan = StatusPlan(evse_ids(evses))

                # Baseline, before: the same number of the same messages, acked only.
                filler = StatusPlan(evse_ids(evses), seed=99)
                await publish_raw(url, exchange, filler.messages(events))
                raw_before = report.rates(
                    "baseline before: raw aio-pika ack-only consumer", events,
                    await drain_raw(url, queue, events, prefetch=prefetch))

                # The connector's Bus alone (RabbitMQ adapter, envelopes checked, no work).
                filler = StatusPlan(evse_ids(evses), seed=97)
                await publish_raw(url, exchange, filler.messages(events))
                bus_alone = await drain_bus(bus, queue_spec(FLOW, flows), events,
                                            prefetch=prefetch)

                # The backlog, then the connector.
                publish_seconds = await publish_raw(url, exchange, plan.messages(events))
                report.figure("raw aio-pika publisher (confirms, mandatory)",
                              events / publish_seconds, "messages/s", digits=0)
                started = time.time()
                clock = clocks()
                with Profile(args.profile):
                    await connector.start()
                    progress = (asyncio.create_task(_progress(connector))
                                if args.progress else None)
                    done = await wait_until(lambda: connector.outcomes(FLOW) >= events,
                                            f"a result for each of {events} events",
                                            give_up_after=max(120.0, events / 50))
                connector_timing = Timing(done - started, time.process_time() - clock[1])
                if progress is not None:
                    progress.cancel()
                calls = await simulator.calls(OPERATION)
                last_push = max((c.answered or 0.0) for c in calls)

                # Paced: events at a steady rate, the connector keeping up.
                paced_since = time.time()
                if paced:
                    await publish_raw(url, exchange, plan.messages(paced), window=8,
                                      rate=rate)
                    await wait_until(lambda: connector.outcomes(FLOW) >= events + paced,
                                     f"a result for each of {paced} paced events",
                                     give_up_after=max(60.0, paced / rate * 3))
                    # The last push's answer is recorded just after the results go out.
                    await asyncio.sleep(0.2)
                all_calls = await simulator.calls(OPERATION)
                final = await simulator.evse_status(OPERATOR_ID)
                overlaps = await simulator.overlaps()
                per_minute = await simulator.max_calls_per_minute(OPERATION)
                await connector.stop()

                # Baseline, after.
                filler = StatusPlan(evse_ids(evses), seed=98)
                await publish_raw(url, exchange, filler.messages(events))
                raw_after = report.rates(
                    "baseline after: raw aio-pika ack-only consumer", events,
                    await drain_raw(url, queue, events, prefetch=prefetch))
                baseline = ((raw_before[0] + raw_after[0]) / 2,
                            (raw_before[1] + raw_after[1]) / 2)
                report.note(f"baseline (mean of before and after): {baseline[0]:,.0f} "
                            f"messages/s; {baseline[1]:,.0f} messages per CPU second")
                report.rates("the connector's RabbitMQ Bus consumer alone (envelope checked, "
                             "no work)", events, bus_alone, baseline)
                carried = report.rates("connector: status events carried to Hubject (each "
                                       "with its result)", events, connector_timing, baseline)
                report.goal("status events at 50% or more of the raw consumer's rate "
                            "(per CPU second)", carried[1] >= 0.5 * baseline[1])

                burst_delays = plan.delays(calls)
                report.note(f"PushEvseStatus calls for the backlog: {len(calls)} "
                            f"({describe_calls(calls)})")
                report.figure("time from the first event published to the last push",
                              last_push - (plan.first or started), "s", digits=2)
                report.figure("time from the connector's start to the last push",
                              last_push - started, "s", digits=2)
                report.figure("backlog delay p50 (event time to Hubject's answer, waiting "
                              "in the queue included)", percentile(burst_delays, 50), "s",
                              digits=3)
                report.figure("backlog delay p99", percentile(burst_delays, 99), "s", digits=3)
                if paced:
                    paced_calls = [c for c in all_calls if c.received >= paced_since]
                    paced_delays = plan.delays(paced_calls, since=paced_since)
                    report.note(f"paced phase: {paced:,} events at {rate:g}/s, "
                                f"{len(paced_calls)} PushEvseStatus calls "
                                f"({describe_calls(paced_calls)})")
                    report.figure("paced delay p50 (event time to Hubject's answer)",
                                  percentile(paced_delays, 50), "s", digits=3)
                    report.figure("paced delay p99", percentile(paced_delays, 99), "s",
                                  digits=3)

                expected = plan.expected()
                wrong = sum(1 for evse, status in expected.items() if final.get(evse) != status)
                report.check("the simulator's final state is the latest status of every EVSE",
                             wrong == 0 and set(final) == set(expected),
                             f"{len(expected)} EVSEs, {wrong} differ, "
                             f"{len(set(final) - set(expected))} unexpected")
                report.check("no overlapping pushes", overlaps == 0, f"{overlaps} overlaps")
                limit = OPERATIONS[OPERATION].rate_per_minute or 0
                report.check("no minute over the limit", per_minute <= limit,
                             f"at most {per_minute} calls in a minute, limit {limit}")
                wanted = set(plan.ids)
                counted = ResultCount.of(wanted, result_data(await collect_until(
                    url, results_queue, lambda found: len(found) >= len(wanted))))
                report.check("one delivery result per event",
                             counted.missing == 0 and counted.several == 0,
                             f"{len(wanted)} events, {counted.describe()}")
            finally:
                await connector.stop()
                await delete_topology(bus, flows)
    return report


def parser() -> argparse.ArgumentParser:
    """The command line."""
    made = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    made.add_argument("--events", type=int, default=50_000, help="status events (50,000)")
    made.add_argument("--evses", type=int, default=5_000, help="EVSEs they change (5,000)")
    made.add_argument("--paced-events", type=int, default=5_000,
                      help="events of the paced phase (5,000; 0 skips it)")
    made.add_argument("--paced-rate", type=float, default=500.0,
                      help="events per second in the paced phase (500)")
    made.add_argument("--progress", action="store_true",
                      help="print the counts taken and settled every second")
    common_options(made)
    return made


if __name__ == "__main__":
    run(main, parser())
