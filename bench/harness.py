"""What every benchmark shares: the machine, the report, raw AMQP baselines, the connector.

* :class:`Report` prints each figure with its ratio to the baseline and each correctness
  check (``check: <what>: PASS|FAIL``), then appends them to ``bench/results.md`` with the
  machine (:class:`Machine`) and the date. A failed check makes the benchmark exit 1.
* The raw baseline is plain aio-pika, as a backend would write it: :func:`publish_raw`
  (publisher confirms, ``mandatory``) and :func:`drain_raw` (a consumer that only acks).
* :class:`Connector` is the connector's parts in one process, started and stopped in the
  service's order (state store, bus with every queue declared, Hubject client, flows),
  logging as ``serve`` does (JSON lines, level info) into a file.
* Every run uses RabbitMQ names and PostgreSQL schemas of its own and removes them after.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import signal
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aio_pika
import aio_pika.abc
import aiohttp
import asyncpg
from prometheus_client import CollectorRegistry

from hubject_connector.bus.base import Bus, IncomingMessage, QueueSpec
from hubject_connector.bus.factory import build_bus
from hubject_connector.bus.rabbitmq import RabbitMQNames, backend_queues
from hubject_connector.bus.topology import connector_queues
from hubject_connector.certs import DevPki, make_dev_pki
from hubject_connector.cli.config import to_toml
from hubject_connector.config import (
    BusConfig,
    Config,
    FlowsConfig,
    HubjectConfig,
    PostgresStateConfig,
    RabbitMQConfig,
    RetryConfig,
    SqliteStateConfig,
    StateConfig,
)
from hubject_connector.flows import Flows
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.logs import configure_logging
from hubject_connector.oicp.operations import OPERATIONS, Direction
from hubject_connector.state.base import StateStore
from hubject_connector.state.factory import build_store
from hubject_connector.state.postgres import quote_identifier

REPO: Final = Path(__file__).resolve().parent.parent
RESULTS_FILE: Final = REPO / "bench" / "results.md"
RABBITMQ_URL: Final = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
POSTGRES_DSN: Final = os.environ.get("BENCH_POSTGRES_DSN",
                                     "postgresql://postgres@127.0.0.1:5432/test")
OPERATOR_ID: Final = "DE*ABC"
OPERATOR_NAME: Final = "ABC Charging"
CLOUDEVENTS: Final = "application/cloudevents+json"


# --- the machine and the report ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Machine:
    """Where a figure was measured."""

    cpus: int
    cpu_model: str
    python: str
    system: str

    @classmethod
    def detect(cls) -> Machine:
        """This machine."""
        model = platform.processor() or "unknown"
        with suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        return cls(cpus=os.cpu_count() or 0, cpu_model=model,
                   python=f"{platform.python_implementation()} {platform.python_version()}",
                   system=f"{platform.system()} {platform.release()}")

    def describe(self) -> str:
        """One line for the report."""
        load = ""
        with suppress(OSError):
            load = f", load average {os.getloadavg()[0]:.2f}"
        return (f"nproc {self.cpus}, {self.cpu_model}, {self.python}, {self.system}{load}")


@dataclass(frozen=True, slots=True)
class Timing:
    """How long a phase took: on the wall clock, and in this process's CPU time.

    On a machine shared with other work the wall clock says as much about the neighbours
    as about the code; the CPU time this process used (every thread) does not.
    """

    wall: float
    cpu: float

    @classmethod
    def since(cls, wall: float, cpu: float) -> Timing:
        """From ``(time.perf_counter(), time.process_time())`` taken at the start."""
        return cls(time.perf_counter() - wall, time.process_time() - cpu)

    def rates(self, count: int) -> tuple[float, float]:
        """(per wall second, per CPU second) for ``count`` messages."""
        return count / self.wall, count / max(self.cpu, 1e-9)


def clocks() -> tuple[float, float]:
    """The start of a :class:`Timing`."""
    return time.perf_counter(), time.process_time()


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, by linear interpolation; nan if empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Report:
    """Figures and checks of one benchmark run, printed as they come and kept for the file."""

    title: str
    options: str = ""
    lines: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def rates(self, label: str, count: int, timing: Timing,
              baseline: tuple[float, float] | None = None) -> tuple[float, float]:
        """Messages per wall second and per CPU second of ``timing``, with their ratios to
        ``baseline`` (its two rates) when given; the two rates."""
        wall, cpu = timing.rates(count)
        text = f"{label}: {wall:,.0f} messages/s"
        if baseline is not None:
            text += f" (ratio to baseline {wall / baseline[0]:.2f})"
        text += f"; {cpu:,.0f} messages per CPU second"
        if baseline is not None:
            text += f" (ratio to baseline {cpu / baseline[1]:.2f})"
        self.note(text)
        return wall, cpu

    def figure(self, label: str, value: float, unit: str, *,
               baseline: float | None = None, digits: int = 1) -> None:
        """A measured figure, with its ratio to ``baseline`` when there is one."""
        text = f"{label}: {value:,.{digits}f} {unit}".rstrip()
        if baseline is not None and baseline > 0:
            text += f" (ratio to baseline {value / baseline:.2f})"
        self.note(text)

    def note(self, text: str) -> None:
        """A line of the report."""
        print(text, flush=True)
        self.lines.append(text)

    def check(self, label: str, ok: bool, detail: str = "") -> bool:
        """A correctness check: PASS or FAIL with what was found."""
        text = f"check: {label}: {'PASS' if ok else 'FAIL'}"
        if detail:
            text += f" ({detail})"
        self.note(text)
        if not ok:
            self.failed.append(label)
        return ok

    def goal(self, label: str, met: bool) -> None:
        """A performance goal: met or not (not a check: figures depend on the machine)."""
        self.note(f"goal: {label}: {'met' if met else 'NOT met'}")

    def write(self, path: Path | None) -> None:
        """Append the report to ``path`` (markdown) with the machine and the date."""
        if path is None:
            return
        machine = Machine.detect()
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        block = [f"## {self.title}", "", f"- date: {when}", f"- machine: {machine.describe()}"]
        if self.options:
            block.append(f"- run: {self.options}")
        block.extend(f"- {line}" for line in self.lines)
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists() or path.stat().st_size == 0
        with path.open("a", encoding="utf-8") as out:
            if new:
                out.write("# Benchmark results\n\nAppended by each run of `make bench` "
                          "(bench/*.py); newest last.\n\n")
            out.write("\n".join(block) + "\n\n")

    @property
    def exit_code(self) -> int:
        """0 when every check passed."""
        return 1 if self.failed else 0


def common_options(parser: argparse.ArgumentParser) -> None:
    """``--quick`` and ``--results``, which every benchmark takes."""
    parser.add_argument("--quick", action="store_true",
                        help="a small run for a smoke test (the checks still apply)")
    parser.add_argument("--results", type=Path, default=RESULTS_FILE,
                        help=f"markdown file the results are appended to (default {RESULTS_FILE})")
    parser.add_argument("--no-results", action="store_true",
                        help="print only; append nothing to the results file")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"],
                        help="the connector's log level (default info, as serve's default)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="write a pyinstrument profile of the measured phase to FILE "
                             "(needs pyinstrument installed in the venv)")


class Profile:
    """``--profile FILE``: pyinstrument's profile of a measured phase, written as text.

    pyinstrument is a tool for whoever profiles, not a dependency: install it into the
    venv (``.venv/bin/pip install pyinstrument``) before using the option.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._profiler: Any = None

    def __enter__(self) -> Profile:
        if self.path is not None:
            module = importlib.import_module("pyinstrument")
            self._profiler = module.Profiler(async_mode="disabled", interval=0.0005)
            self._profiler.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._profiler is not None and self.path is not None:
            self._profiler.stop()
            renderers = importlib.import_module("pyinstrument.renderers")
            flat = renderers.ConsoleRenderer(unicode=True, flat=True, show_all=True)
            self.path.write_text(self._profiler.output_text(unicode=True, show_all=False)
                                 + "\n\nBy own time:\n" + self._profiler.output(flat))
            print(f"profile written to {self.path}", flush=True)


def results_path(args: argparse.Namespace) -> Path | None:
    """Where to append the report, or None."""
    return None if args.no_results else Path(args.results)


# --- raw AMQP: the baseline ---------------------------------------------------------------


async def publish_raw(url: str, exchange_name: str,
                      messages: Iterable[tuple[str, Callable[[], tuple[str, bytes]]]],
                      *, window: int = 512, rate: float | None = None) -> float:
    """Publish as a backend does: persistent, confirmed, ``mandatory``; the seconds taken.

    ``messages`` yields (routing key, make) where ``make()`` returns (message id, body) at
    the moment of publishing (so a message's ``time`` is when it was sent). Up to
    ``window`` confirms are awaited together. ``rate``: at most that many per second,
    evenly spaced.
    """
    connection = await aio_pika.connect(url)
    started = time.perf_counter()
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(exchange_name, ensure=False)
        waiting: list[Any] = []
        for index, (routing_key, make) in enumerate(messages):
            if rate:
                pause = started + index / rate - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
            message_id, body = make()
            waiting.append(exchange.publish(
                aio_pika.Message(body, content_type=CLOUDEVENTS, message_id=message_id,
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                 type=routing_key),
                routing_key=routing_key, mandatory=True))
            if len(waiting) >= window:
                await asyncio.gather(*waiting)
                waiting.clear()
        if waiting:
            await asyncio.gather(*waiting)
    return time.perf_counter() - started


async def drain_raw(url: str, queue_name: str, count: int, *, prefetch: int) -> Timing:
    """Consume ``count`` messages from ``queue_name`` acking each, nothing else; seconds.

    The broker's ceiling for a consumer on this queue: what a connector could reach at best.
    The clock starts when the consumer is registered.
    """
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.declare_queue(queue_name, passive=True)
        done = asyncio.get_running_loop().create_future()
        seen = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal seen
            await message.ack()
            seen += 1
            if seen >= count and not done.done():
                done.set_result(None)

        started = clocks()
        tag = await queue.consume(on_message)
        await asyncio.wait_for(done, timeout=max(60.0, count / 100))
        elapsed = Timing.since(*started)
        await queue.cancel(tag)
    return elapsed


async def drain_bus(bus: BusConfig, spec: QueueSpec, count: int, *, prefetch: int) -> Timing:
    """Consume ``count`` messages through the connector's ``Bus`` (RabbitMQ adapter) with a
    handler that does nothing (the envelope parsed and checked, as ``validate`` does);
    the seconds from the consumer's start to the last one settled."""
    made = build_bus(bus, serve=False, queues=[spec])
    await made.connect()
    try:
        done = asyncio.get_running_loop().create_future()
        seen = 0

        async def handler(message: IncomingMessage) -> None:
            nonlocal seen
            seen += 1
            if seen >= count and not done.done():
                # Settled right after this returns: give the ack one more turn of the loop.
                asyncio.get_running_loop().call_soon(done.set_result, None)

        started = clocks()
        consumer = await made.consume(spec, handler, prefetch=prefetch, validate=True)
        await asyncio.wait_for(done, timeout=max(60.0, count / 100))
        elapsed = Timing.since(*started)
        await consumer.cancel()
    finally:
        await made.close()
    return elapsed


async def collect_raw(url: str, queue_name: str, count: int, *,
                      give_up_after: float = 60.0) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take (and ack) messages from ``queue_name`` until ``count`` came (or after a while)."""
    return await collect_until(url, queue_name, lambda found: len(found) >= count,
                               give_up_after=give_up_after)


async def collect_until(
    url: str, queue_name: str,
    enough: Callable[[list[aio_pika.abc.AbstractIncomingMessage]], bool], *,
    give_up_after: float = 60.0,
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take (and ack) messages from ``queue_name`` until ``enough(found)`` or a while passed;
    then half a second more, so that duplicates on their way show too."""
    found: list[aio_pika.abc.AbstractIncomingMessage] = []
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1000)
        queue = await channel.declare_queue(queue_name, passive=True)
        done = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            found.append(message)
            if enough(found):
                done.set()

        tag = await queue.consume(on_message)
        with suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), give_up_after)
        await asyncio.sleep(0.5)
        await queue.cancel(tag)
    return found


def result_data(messages: Iterable[aio_pika.abc.AbstractIncomingMessage]) -> list[dict[str, Any]]:
    """The ``data`` of delivery results taken from the bus, each with its envelope's id as
    ``result_id``."""
    found: list[dict[str, Any]] = []
    for message in messages:
        envelope = json.loads(message.body)
        data = envelope.get("data")
        if isinstance(data, dict):
            found.append({**data, "result_id": envelope.get("id")})
    return found


@dataclass(frozen=True, slots=True)
class ResultCount:
    """Delivery results about a set of messages, read as docs/contract.md tells a backend:
    a result whose id was seen before is a repeat (after a crash or a lost connection) and
    is dropped."""

    missing: int
    #: Messages with more than one distinct result (different ids): real news or an error.
    several: int
    #: Copies dropped because their id was seen.
    repeats: int
    outcomes: Counter[str]
    #: A few messages with several distinct results: their outcomes and reasons.
    examples: list[list[str]]

    @classmethod
    def of(cls, wanted: Iterable[str], results: Iterable[dict[str, Any]]) -> ResultCount:
        """Count the results about ``wanted`` (message ids)."""
        wanted = set(wanted)
        seen: set[Any] = set()
        by_message: dict[str, list[dict[str, Any]]] = {}
        repeats = 0
        for result in results:
            if result.get("message_id") not in wanted:
                continue
            if result.get("result_id") in seen:
                repeats += 1
                continue
            seen.add(result.get("result_id"))
            by_message.setdefault(result["message_id"], []).append(result)
        several = [found for found in by_message.values() if len(found) > 1]
        return cls(
            missing=len(wanted - set(by_message)), several=len(several), repeats=repeats,
            outcomes=Counter(r["outcome"] for found in by_message.values() for r in found),
            examples=[[f"{r['outcome']}: {r.get('reason') or r.get('status_code')}"
                       for r in found] for found in several[:3]],
        )

    def describe(self) -> str:
        """What was found, for a check's detail."""
        text = (f"{self.missing} without result, {self.several} with more than one, "
                f"{self.repeats} repeated copies dropped; outcomes: "
                + ", ".join(f"{n} {o}" for o, n in sorted(self.outcomes.items())))
        if self.examples:
            text += "; e.g. " + " | ".join(" + ".join(e) for e in self.examples)
        return text


async def queue_depth(url: str, queue_name: str) -> int:
    """Messages ready in a queue (not those handed to a consumer)."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        return int(queue.declaration_result.message_count or 0)


# --- names, configurations and clean-up ----------------------------------------------------


def unique_name(kind: str) -> str:
    """A name no other run uses."""
    return f"bench-{kind}-{uuid.uuid4().hex[:8]}"


def rabbitmq_bus(run: str, url: str = RABBITMQ_URL) -> BusConfig:
    """A RabbitMQ bus whose exchanges and queues belong to this run only."""
    return BusConfig(
        kind="rabbitmq",
        rabbitmq=RabbitMQConfig(url=url, exchange=f"{run}.events", queue_prefix=run,
                                dead_letter_exchange=f"{run}.dlx", connection_name=run),
    )


def every_queue(flows: FlowsConfig) -> list[QueueSpec]:
    """Every queue a connector with ``flows`` declares: its own and the backend's."""
    return [*connector_queues(flows), *backend_queues()]


async def delete_topology(bus: BusConfig, flows: FlowsConfig) -> None:
    """Delete every exchange and queue of the run from the broker."""
    names = RabbitMQNames(bus.rabbitmq)
    specs = every_queue(flows)
    delays = set(bus.retry_delays_seconds)
    for spec in specs:
        delays.update(spec.delays(bus.retry_delays_seconds))
    connection = await aio_pika.connect(bus.rabbitmq.url)
    async with connection:
        for queue in [*(names.queue(s.name) for s in specs), names.dead_letter_queue,
                      *(names.retry_queue(d) for d in delays)]:
            channel = await connection.channel()
            await channel.queue_delete(queue)
            await channel.close()
        for exchange in [names.exchange, names.dead_letter_exchange,
                         *(names.retry_exchange(d) for d in delays)]:
            channel = await connection.channel()
            await channel.exchange_delete(exchange)
            await channel.close()


def sqlite_state(directory: Path) -> StateConfig:
    """A SQLite state store in ``directory``."""
    return StateConfig(kind="sqlite", sqlite=SqliteStateConfig(path=directory / "state.sqlite3"))


def postgres_state(dsn: str = POSTGRES_DSN) -> StateConfig:
    """A PostgreSQL state store in a schema of this run's own."""
    return StateConfig(kind="postgresql", postgresql=PostgresStateConfig(
        dsn=dsn, schema=unique_name("state").replace("-", "_")))


async def drop_state(state: StateConfig) -> None:
    """Drop a PostgreSQL store's schema (SQLite files go with the temporary folder)."""
    if state.kind != "postgresql":
        return
    connection = await asyncpg.connect(state.postgresql.dsn)
    try:
        await connection.execute(
            f"DROP SCHEMA IF EXISTS {quote_identifier(state.postgresql.schema)} CASCADE")
    finally:
        await connection.close()


def unlimited_rates() -> dict[str, int]:
    """Rate limits high enough never to wait: to measure the connector, not Hubject's rules."""
    return {name: 1_000_000 for name, op in OPERATIONS.items()
            if op.direction is Direction.CPO_TO_HUBJECT}


def connector_config(pki: DevPki, simulator_url: str, bus: BusConfig, state: StateConfig,
                     flows: FlowsConfig, *, rate_limits: dict[str, int] | None = None,
                     retry: RetryConfig | None = None) -> Config:
    """The connector's settings for the simulator with the dev PKI (mutual TLS)."""
    hubject = HubjectConfig(
        operator_id=OPERATOR_ID, base_url=simulator_url, client_cert=pki.cpo_client_cert,
        client_key=pki.cpo_client_key, ca_bundle=pki.ca_cert, operator_name=OPERATOR_NAME,
        rate_limits=dict(rate_limits or {}), retry=retry or RetryConfig(),
    )
    return Config(hubject=hubject, bus=bus, state=state, flows=flows)


@asynccontextmanager
async def workspace(kind: str) -> AsyncIterator[tuple[Path, DevPki]]:
    """A temporary folder with a dev PKI (OperatorID DE*ABC), removed afterwards."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as folder:
        directory = Path(folder)
        yield directory, make_dev_pki(directory / "pki", operator_id=OPERATOR_ID)


def log_to(path: Path, level: str = "info") -> None:
    """Log as ``serve`` does (JSON lines; by default at level info) into ``path``."""
    stream = path.open("a", encoding="utf-8")
    configure_logging("json", level, stream=stream)


# --- the connector as ``hubject-connector serve`` ------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def plain(value: Any) -> Any:
    """Settings (dataclasses) as TOML-ready data: paths as text, no None."""
    if is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


class ServeProcess:
    """``hubject-connector serve --config FILE`` in a process of its own.

    ``config``'s inbound and ops sections are replaced: 127.0.0.1, free ports, the dev
    PKI's server certificate. Its output goes to ``log``.
    """

    def __init__(self, config: Config, pki: DevPki, directory: Path, *,
                 log_level: str = "info") -> None:
        self.ops_port = free_port()
        settings = plain(config)
        settings["inbound"] = {"host": "127.0.0.1", "port": free_port(),
                               "tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key),
                               "client_ca": str(pki.ca_cert)}
        settings["ops"] = {"host": "127.0.0.1", "port": self.ops_port}
        settings["logging"] = {"format": "json", "level": log_level}
        self.config_file = directory / f"serve-{uuid.uuid4().hex[:6]}.toml"
        self.config_file.write_text(to_toml(settings), encoding="utf-8")
        self.log = directory / "serve.log"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def ops_url(self) -> str:
        """The ops server (/metrics, /healthz, /readyz)."""
        return f"http://127.0.0.1:{self.ops_port}"

    async def start(self, *, ready_within: float = 60.0) -> ServeProcess:
        """Start the process and wait until /readyz answers 200."""
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith("HUBJECT_CONNECTOR_")}
        with self.log.open("ab") as output:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hubject_connector", "serve", "--config",
                str(self.config_file), stdout=output, stderr=output, env=environment)
        deadline = time.monotonic() + ready_within
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    raise RuntimeError(f"serve exited with {self.process.returncode}; "
                                       f"see {self.log}:\n{self.log.read_text()[-2000:]}")
                with suppress(aiohttp.ClientError, OSError):
                    async with session.get(self.ops_url + "/readyz") as response:
                        if response.status == 200:
                            return self
                await asyncio.sleep(0.1)
        raise RuntimeError(f"serve was not ready within {ready_within:g} s; see {self.log}")

    def rss_mib(self) -> float:
        """Resident memory of the process now, MiB (Linux /proc)."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS in /proc")

    async def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self, grace: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``grace``."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            await self.kill()


# --- the connector in this process ---------------------------------------------------------


class Connector:
    """The connector's parts in this process, in the service's order (see module doc)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        self.store: StateStore | None = None
        self.bus: Bus | None = None
        self.client: HubjectClient | None = None
        self.flows: Flows | None = None

    async def connect(self) -> Connector:
        """Open the store and connect the bus (every queue declared); flows not started."""
        self.store = build_store(self.config.state, registry=self.registry)
        await self.store.open()
        self.bus = build_bus(self.config.bus, queues=connector_queues(self.config.flows))
        await self.bus.connect()
        return self

    async def start(self) -> Connector:
        """Start the Hubject client and the flows (connecting first if needed)."""
        if self.bus is None:
            await self.connect()
        assert self.bus is not None
        assert self.store is not None
        self.client = HubjectClient(self.config.hubject, registry=self.registry)
        await self.client.start()
        self.flows = Flows(self.config, bus=self.bus, client=self.client, store=self.store,
                           registry=self.registry)
        await self.flows.start()
        return self

    async def stop(self, grace: float = 10.0) -> None:
        """Stop the flows within ``grace``, then close client, bus and store."""
        if self.flows is not None:
            await self.flows.stop(grace)
            self.flows = None
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self.bus is not None:
            await self.bus.close()
            self.bus = None
        if self.store is not None:
            await self.store.close()
            self.store = None

    def metric(self, name: str, **labels: str) -> float:
        """A metric sample's value (0 when absent)."""
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def consumed(self, flow: str) -> float:
        """Deliveries of ``flow`` taken from its queue so far."""
        if self.flows is None:
            return 0.0
        return sum(sample.value for family in self.flows.metrics.consumed.collect()
                   for sample in family.samples
                   if sample.name.endswith("_total") and sample.labels.get("flow") == flow)

    def outcomes(self, flow: str) -> float:
        """Messages of ``flow`` with a result so far (accepted, rejected, dead-lettered,
        dropped). Read from the four counters alone: collecting the whole registry on
        every poll would cost the connector measurable time."""
        if self.flows is None:
            return 0.0
        metrics = self.flows.metrics
        total = 0.0
        for counter in (metrics.delivered, metrics.rejected, metrics.dead_lettered,
                        metrics.dropped):
            for family in counter.collect():
                total += sum(sample.value for sample in family.samples
                             if sample.name.endswith("_total")
                             and sample.labels.get("flow") == flow)
        return total


async def wait_until(check: Callable[[], bool], what: str, *, give_up_after: float,
                     every: float = 0.05) -> float:
    """Poll ``check`` until true; the ``time.time()`` it became true. Raises TimeoutError."""
    deadline = time.monotonic() + give_up_after
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {give_up_after:.0f} s waiting for {what}")
        await asyncio.sleep(every)
    return time.time()


def run(main: Callable[[argparse.Namespace], Any], parser: argparse.ArgumentParser) -> None:
    """Parse the options, run ``main`` (a coroutine function returning a Report), exit."""
    args = parser.parse_args()
    report: Report = asyncio.run(main(args))
    report.write(results_path(args))
    sys.exit(report.exit_code)


def with_flows(flows: FlowsConfig, **changes: Any) -> FlowsConfig:
    """``flows`` with some settings changed."""
    return replace(flows, **changes)
