"""The sandbox: the whole connector on one machine, a fake Hubject and a demo backend.

What this room is for: ``hubject-connector sandbox`` (``make run``) shows the connector
doing its job end to end on a fresh clone, with nothing to install or configure. What
passes through it: it writes a throwaway PKI, a bearer token and a configuration file under
``var/sandbox/``; starts the simulator (``hubject_connector.simulator``) as Hubject with the
demo card on its list; starts the service (``app.Service``, in this process) on the embedded
bus and SQLite state; runs ``examples/demo_backend.py`` as a subprocess, as a real backend
would run beside the connector; and, when the backend says it is ready, makes the simulator
act as an EMP sending a remote start through "Hubject" to the connector. What it hands
back: a ``Report`` of every step, built from what the simulator received and answered (not
from what the backend believed), printed as a summary; then everything keeps serving until
``stop``.

Each run starts afresh: the files it wrote the last time (PKI, queue, state) are replaced,
because the simulator remembers nothing between runs either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import structlog

from hubject_connector.app import Service
from hubject_connector.certs import DevPki, make_dev_pki
from hubject_connector.cli.config import to_toml
from hubject_connector.config import Config, load_config
from hubject_connector.errors import ConfigError, ConnectorError
from hubject_connector.simulator import Card, RecordedRequest, Simulator, SimulatorConfig

log = structlog.get_logger(__name__)

#: Where the sandbox writes its files, relative to the working directory.
DEFAULT_DIRECTORY: Final = Path("var/sandbox")
#: The demo's CPO, and the card the simulator's EMP list authorizes.
OPERATOR_ID: Final = "DE*ABC"
DEMO_CARD_UID: Final = "04A1B2C3"
#: What the simulator, acting as EMP, asks to start: an EVSE the demo backend pushed, and
#: a contract of the simulator's own EMP (ProviderID DE-SIM).
REMOTE_START_EVSE: Final = "DE*ABC*E1000*2"
REMOTE_START_EVCO_ID: Final = "DE-SIM-C12345678-1"
#: The demo backend, beside the package in a checkout.
DEMO_BACKEND: Final = Path(__file__).resolve().parent.parent / "examples" / "demo_backend.py"
#: The backend's webhook path (``--listen`` host:port + this).
WEBHOOK_PATH: Final = "/hubject"
#: What the demo backend prints when it waits for the remote start, and when it is done.
BACKEND_READY: Final = "ready for a remote start"
BACKEND_DONE: Final = ("all steps done", "done, with refusals", "failed:")
#: Environment variable giving ``--ports`` its default ("auto" or "default").
PORTS_ENV: Final = "HUBJECT_SANDBOX_PORTS"
#: How long a stopping backend gets after SIGTERM before it is killed.
BACKEND_STOP_SECONDS: Final = 5.0


@dataclass(frozen=True, slots=True)
class Ports:
    """The ports the sandbox listens on (all on 127.0.0.1). 0: a free port, chosen then."""

    simulator: int = 8444
    inbound: int = 8443
    ops: int = 9090
    bus: int = 8090
    backend: int = 8091

    @classmethod
    def auto(cls) -> Ports:
        """Every port free: 0 where the listener reports its port, a free one otherwise."""
        # The backend's port goes into the connector's webhook URL before the backend
        # starts, so it is chosen here; the others are bound to port 0 and read back.
        return cls(simulator=0, inbound=0, ops=0, bus=0, backend=free_port())


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    """What ``hubject-connector sandbox`` was asked for."""

    directory: Path = DEFAULT_DIRECTORY
    ports: Ports = field(default_factory=Ports)
    #: The backend program (a Python file run with this interpreter).
    backend: Path = DEMO_BACKEND
    #: Longest time the demo may take before it counts as failed.
    demo_timeout_seconds: float = 90.0


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the demo, as the simulator saw it."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Report:
    """Every step of the demo; ``ok`` when each one completed."""

    steps: tuple[Step, ...]
    #: Why the demo stopped early, if it did (the backend failed, a timeout).
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every step completed and nothing went wrong."""
        return self.problem is None and bool(self.steps) and all(s.ok for s in self.steps)

    def lines(self) -> list[str]:
        """The summary, one line per step."""
        lines = [f"  [{'ok' if s.ok else 'FAILED'}] {s.name}: {s.detail}" for s in self.steps]
        if self.problem is not None:
            lines.append(f"  problem: {self.problem}")
        return lines


def say(text: str) -> None:
    """Print one line of the sandbox's story on stdout, at once."""
    print(f"sandbox: {text}", flush=True)


class Sandbox:
    """The simulator, the service and the backend, started and stopped together.

    ``start()`` starts the simulator and the service; ``run_demo()`` runs the backend
    and the remote start and returns the ``Report``; ``stop()`` ends the backend, the
    service and the simulator, in that order. Also an async context manager.
    """

    def __init__(self, options: SandboxOptions, *, out: Callable[[str], None] = say,
                 echo: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.directory = options.directory.resolve()
        self._say = out
        # The backend's own lines are shown as they are ("backend: ...").
        self._echo = echo if echo is not None else _print_line
        self.pki: DevPki | None = None
        self.config: Config | None = None
        self.simulator: Simulator | None = None
        self.service: Service | None = None
        self.backend: asyncio.subprocess.Process | None = None
        self.remote_start_ack: str | None = None
        self._backend_lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._remote_start_ok = False

    # --- paths ---------------------------------------------------------------------------

    @property
    def token_file(self) -> Path:
        """The embedded bus API's bearer token."""
        return self.directory / "bus-token"

    @property
    def config_file(self) -> Path:
        """The connector's configuration, reusable with ``serve --config``."""
        return self.directory / "connector.toml"

    @property
    def example_file(self) -> Path:
        """A message the user can send themselves."""
        return self.directory / "examples" / "status-available.json"

    # --- start ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Write the files, start the simulator, then the service.

        Raises ``ConfigError`` (a port in use, a bad file) or another ``ConnectorError``;
        what started is stopped again first.
        """
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        ports = self.options.ports
        self._fresh_directory()
        self.pki = make_dev_pki(self.directory / "pki", operator_id=OPERATOR_ID)
        self._say(f"dev PKI written to {self._shown(self.pki.directory)} (CA, server, "
                  f"Hubject and CPO client certificates for {OPERATOR_ID})")
        token = secrets.token_urlsafe(24)
        _write_secret(self.token_file, token + "\n")

        sim_config = SimulatorConfig.from_dev_pki(
            self.pki, port=ports.simulator, cards=(Card(uid=DEMO_CARD_UID),),
        )
        simulator = Simulator(sim_config)
        try:
            await simulator.start()
        except OSError as exc:
            raise ConfigError("--simulator-port", _in_use(ports.simulator, exc)) from exc
        self.simulator = simulator
        self._say(f"Hubject simulator on {simulator.url} (card {DEMO_CARD_UID} on its "
                  "list of authorized cards)")

        self.config = self._write_config(simulator.url)
        self._say(f"configuration written to {self._shown(self.config_file)}")
        service = Service(self.config)
        await service.start()
        self.service = service
        addresses = service.addresses()
        self._say(f"connector serving: inbound {addresses['inbound']}, ops {addresses['ops']}, "
                  f"bus API {addresses['bus_api']}")
        self._write_example()

    def _fresh_directory(self) -> None:
        """Remove what an earlier run wrote (only the sandbox's own names)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for name in ("pki", "examples"):
            shutil.rmtree(self.directory / name, ignore_errors=True)
        for pattern in ("bus.sqlite3*", "state.sqlite3*", "bus-token", "connector.toml"):
            for path in self.directory.glob(pattern):
                path.unlink(missing_ok=True)

    def _write_config(self, hubject_url: str) -> Config:
        assert self.pki is not None
        ports = self.options.ports
        pki = self.pki
        data: dict[str, Any] = {
            "hubject": {
                "operator_id": OPERATOR_ID,
                "operator_name": "Sandbox CPO",
                "base_url": hubject_url,
                "client_cert": str(pki.cpo_client_cert),
                "client_key": str(pki.cpo_client_key),
                # The simulator's server certificate comes from the dev CA: trusted
                # explicitly, as Hubject's own CA is in production.
                "ca_bundle": str(pki.ca_cert),
                "time_zone": "Europe/Berlin",
            },
            "bus": {
                "kind": "embedded",
                "embedded": {
                    "path": str(self.directory / "bus.sqlite3"),
                    "http_host": "127.0.0.1",
                    "http_port": ports.bus,
                    "webhook_url": f"http://127.0.0.1:{ports.backend}{WEBHOOK_PATH}",
                    "auth_token_file": str(self.token_file),
                    "poll_interval_seconds": 0.2,
                },
            },
            "inbound": {
                "host": "127.0.0.1",
                "port": ports.inbound,
                "tls_cert": str(pki.server_cert),
                "tls_key": str(pki.server_key),
                # Who may call: the dev CA issued the simulator's "Hubject" certificate.
                "client_ca": str(pki.ca_cert),
            },
            "ops": {"host": "127.0.0.1", "port": ports.ops},
            "state": {"kind": "sqlite", "sqlite": {"path": str(self.directory / "state.sqlite3")}},
            "service": {"shutdown_grace_seconds": 5.0},
        }
        self.config_file.write_text(
            "# Written by `hubject-connector sandbox`; replaced at its next run.\n"
            + to_toml(data), encoding="utf-8",
        )
        # The environment is not read: the sandbox runs the same whatever the shell holds.
        return load_config(self.config_file, {}, check_files=True)

    def _write_example(self) -> None:
        message = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "urn:sandbox-user",
            "type": "com.hubject-connector.evse.status.v1",
            "subject": "DE*ABC*E1000*1",
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "datacontenttype": "application/json",
            "data": {"evse_id": "DE*ABC*E1000*1", "status": "Available"},
        }
        self.example_file.parent.mkdir(parents=True, exist_ok=True)
        self.example_file.write_text(json.dumps(message, indent=2) + "\n", encoding="utf-8")

    # --- the demo ------------------------------------------------------------------------

    async def run_demo(self) -> Report:
        """Run the backend, answer its readiness with a remote start, collect the report."""
        service = self._started()
        bus_api = service.addresses()["bus_api"]
        assert bus_api is not None
        script = self.options.backend
        if not script.is_file():
            return Report((), problem=f"no backend program at {script}")
        listen = f"127.0.0.1:{self.options.ports.backend}"
        self.backend = await asyncio.create_subprocess_exec(
            sys.executable, "-u", str(script), "--bus", bus_api, "--listen", listen,
            "--token-file", str(self.token_file),
            stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
        )
        self._reader = asyncio.create_task(self._read_backend(), name="sandbox-backend-reader")
        self._say(f"demo backend started (pid {self.backend.pid}): {self._shown(script)}, "
                  f"webhook http://{listen}{WEBHOOK_PATH}")
        problem: str | None = None
        try:
            async with asyncio.timeout(self.options.demo_timeout_seconds):
                problem = await self._follow_backend()
        except TimeoutError:
            problem = (f"the demo did not finish within "
                       f"{self.options.demo_timeout_seconds:g} s")
        return Report(await self._steps(), problem=problem)

    async def _read_backend(self) -> None:
        assert self.backend is not None
        assert self.backend.stdout is not None
        async for raw in self.backend.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._echo(line)
            await self._backend_lines.put(line)
        await self._backend_lines.put(None)

    async def _follow_backend(self) -> str | None:
        """Watch the backend's lines until it is done; why it failed, or None."""
        remote_start: asyncio.Task[None] | None = None
        try:
            while True:
                line = await self._backend_lines.get()
                if line is None:
                    code = await self._backend_exit()
                    return f"the backend exited (code {code}) before the demo finished"
                if BACKEND_READY in line and remote_start is None:
                    remote_start = asyncio.create_task(self._remote_start(),
                                                       name="sandbox-remote-start")
                if any(marker in line for marker in BACKEND_DONE):
                    if remote_start is not None:
                        await remote_start
                    return None if "all steps done" in line else f"the backend said: {line}"
        finally:
            if remote_start is not None and not remote_start.done():
                remote_start.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await remote_start

    async def _backend_exit(self) -> int | None:
        assert self.backend is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(BACKEND_STOP_SECONDS):
                return await self.backend.wait()
        return None

    async def _remote_start(self) -> None:
        """The simulator, as an EMP through Hubject, asks the connector to start charging."""
        service, simulator, pki = self._started(), self.simulator, self.pki
        assert simulator is not None
        assert pki is not None
        self._say(f"EMP (the simulator) sends AuthorizeRemoteStart for {REMOTE_START_EVSE}, "
                  f"contract {REMOTE_START_EVCO_ID}, to {service.inbound_url}")
        try:
            async with simulator.emp(service.inbound_url, ca=pki.ca_cert) as emp:
                ack = await emp.remote_start(REMOTE_START_EVSE, REMOTE_START_EVCO_ID)
        except ConnectorError as exc:
            self.remote_start_ack = f"no acknowledgement: {exc}"
            self._say(f"remote start failed: {exc}")
            return
        self.remote_start_ack = (
            f"Result {str(ack.result).lower()}, StatusCode {ack.status_code.code}, "
            f"SessionID {ack.session_id}, CPOPartnerSessionID {ack.cpo_partner_session_id}"
        )
        self._say(f"connector acknowledged the remote start: {self.remote_start_ack}")
        self._remote_start_ok = ack.result and ack.status_code.code == "000"

    async def _steps(self) -> tuple[Step, ...]:
        """What the simulator received and answered, step by step."""
        simulator = self.simulator
        assert simulator is not None
        data = simulator.requests_of("PushEvseData")
        pushed = [record.get("EvseID") for r in data
                  for record in _path(r.json, "OperatorEvseData", "EvseDataRecord") or []
                  if isinstance(record, dict)]
        status_pushes = simulator.requests_of("PushEvseStatus")
        statuses = [_status_push(r) for r in status_pushes]
        authorizations = simulator.requests_of("AuthorizeStart")
        cdrs = simulator.requests_of("ChargeDetailRecord")
        return (
            Step("EVSE data pushed", _accepted(data) and len(pushed) >= 2,
                 f"{len(data)} PushEvseData call(s) with {', '.join(map(str, pushed)) or 'none'}"
                 f"; answers {_codes(data)}"),
            # Hubject refuses an "update" for an EVSE it holds no status of (text spec,
            # eRoamingPushEvseStatus); the connector then pushes it again as an insert, so
            # only the last answer decides.
            Step("status pushed", _accepted(status_pushes[-1:]),
                 "; then ".join(statuses) or "none"),
            Step("card authorized", bool(authorizations) and all(
                _authorization(r) == "Authorized" for r in authorizations),
                 f"UID {DEMO_CARD_UID}: "
                 + (", ".join(str(_authorization(r)) for r in authorizations) or "not asked")),
            Step("remote start acknowledged", self._remote_start_ok,
                 self.remote_start_ack or "not sent"),
            Step("CDR accepted", _accepted(cdrs),
                 ", ".join(f"session {_path(r.json, 'SessionID')}, "
                           f"{_path(r.json, 'ConsumedEnergy')} kWh, answer {r.status_code}"
                           for r in cdrs) or "not sent"),
        )

    # --- while serving -------------------------------------------------------------------

    def urls(self) -> list[str]:
        """Where to look and what to try while the sandbox serves."""
        service = self._started()
        assert self.simulator is not None
        addresses = service.addresses()
        ops, bus_api = addresses["ops"], addresses["bus_api"]
        token = self._shown(self.token_file)
        return [
            f"metrics:    {ops}/metrics   (health: {ops}/healthz, readiness: {ops}/readyz)",
            f"bus API:    {bus_api}/v1/messages, {bus_api}/v1/results "
            f"(bearer token in {token})",
            f"inbound:    {addresses['inbound']} (mutual TLS, for Hubject)",
            f"simulator:  {self.simulator.url} (as Hubject)",
            f"config:     {self._shown(self.config_file)} (serve --config uses it as is)",
            "send your own message, e.g.:",
            f'  curl -H "Authorization: Bearer $(cat {token})" '
            f'-H "Content-Type: application/cloudevents+json" '
            f"--data @{self._shown(self.example_file)} {bus_api}/v1/messages",
            f'  curl -H "Authorization: Bearer $(cat {token})" {bus_api}/v1/results',
            f"dead letters: hubject-connector dlq list --config {self._shown(self.config_file)}",
        ]

    # --- stop ----------------------------------------------------------------------------

    async def stop(self) -> None:
        """End the backend, then the service, then the simulator. Safe to call twice."""
        try:
            await self._stop_backend()
            service, self.service = self.service, None
            if service is not None:
                await service.stop()
        finally:
            simulator, self.simulator = self.simulator, None
            if simulator is not None:
                await simulator.stop()

    async def _stop_backend(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None and backend.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                backend.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(BACKEND_STOP_SECONDS):
                    await backend.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    backend.kill()
                await backend.wait()
        reader, self._reader = self._reader, None
        if reader is not None:
            # Its pipe is closed once the backend has exited: it ends by itself.
            with contextlib.suppress(Exception):
                await reader

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- helpers -------------------------------------------------------------------------

    def _started(self) -> Service:
        if self.service is None:
            raise RuntimeError("the sandbox is not started")
        return self.service

    def _shown(self, path: Path) -> str:
        """``path`` relative to the working directory when it is below it (shorter)."""
        try:
            return str(path.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(path)


async def run_sandbox(options: SandboxOptions, stop: asyncio.Event, *,
                      once: bool = False) -> int:
    """The sandbox command: start, run the demo, keep serving until ``stop`` is set.

    Returns 0 when the demo completed (or was interrupted by ``stop`` before it could
    finish), 1 when it failed. ``once`` stops right after the summary. Raises
    ``ConnectorError`` (``ConfigError`` for a port in use) when it cannot start.
    """
    sandbox = Sandbox(options)
    stopped = asyncio.create_task(stop.wait(), name="sandbox-stop")
    work = asyncio.create_task(_demo(sandbox), name="sandbox-demo")
    try:
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            say("stopping before the demo finished")
            await _cancel(work)
            return 0
        report = work.result()
        if not once:
            say("serving until Ctrl-C")
            for line in sandbox.urls():
                say(line)
            await stopped
        say("stopping")
        return 0 if report.ok else 1
    finally:
        stopped.cancel()
        await _cancel(work)
        await sandbox.stop()
        say("stopped")


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` (if it still runs) and wait for it to end."""
    if task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _demo(sandbox: Sandbox) -> Report:
    await sandbox.start()
    report = await sandbox.run_demo()
    say("summary (what the simulator, as Hubject, received and answered):")
    for line in report.lines():
        say(line)
    if report.ok:
        say("every step completed against the simulator")
    else:
        say("the demo did not complete: see the steps marked FAILED above")
    return report


def options_with_ports(options: SandboxOptions, ports: Ports,
                       overrides: Sequence[tuple[str, int | None]]) -> SandboxOptions:
    """``options`` with ``ports``, then each given ``(name, port)`` override applied."""
    given = {name: port for name, port in overrides if port is not None}
    if given.get("backend") == 0:
        # The connector's webhook URL needs the real port before the backend starts.
        given["backend"] = free_port()
    return replace(options, ports=replace(ports, **given))


def ports_from_environment(env: dict[str, str] | None = None) -> str:
    """``$HUBJECT_SANDBOX_PORTS`` ("auto" or "default"; "default" when unset)."""
    value = (os.environ if env is None else env).get(PORTS_ENV, "").strip().lower()
    return value or "default"


# --- small helpers ------------------------------------------------------------------------


def _print_line(line: str) -> None:
    print(line, flush=True)


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


def _in_use(port: int, exc: OSError) -> str:
    return (f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; choose another "
            "port or run with --ports auto")


def _path(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _accepted(records: Sequence[RecordedRequest]) -> bool:
    return bool(records) and all(r.result is True and r.status_code == "000" for r in records)


def _codes(records: Sequence[RecordedRequest]) -> str:
    return ", ".join(f"{r.status_code} ({'accepted' if r.result else 'refused'})"
                     for r in records) or "none"


def _status_push(record: RecordedRequest) -> str:
    records = _path(record.json, "OperatorEvseStatus", "EvseStatusRecord") or []
    pushed = ", ".join(f"{r.get('EvseID')} {r.get('EvseStatus')}"
                       for r in records if isinstance(r, dict))
    return f"{_path(record.json, 'ActionType')} {pushed} answered {_codes([record])}"


def _authorization(record: RecordedRequest) -> str | None:
    status = getattr(record.answer, "authorization_status", None)
    return None if status is None else str(status)
