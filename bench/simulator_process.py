"""The fake Hubject in a process of its own, driven from the benchmark through a pipe.

Hubject is remote: its work (TLS, decoding and checking every pushed record) must not
run on the connector's event loop nor count as the connector's time. The child process
runs a ``Simulator`` (mutual TLS with the dev PKI) and answers a few commands: script
faults, and report what it saw (calls, overlaps, calls per minute, the EVSE statuses
and CDRs it holds). Reports are plain data, so they cross the pipe as pickles.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import structlog

from hubject_connector.simulator import FaultKind, Simulator, SimulatorConfig
from hubject_connector.simulator.recording import RecordedRequest

#: Longest wait for the child to start or answer a command.
WAIT_SECONDS: Final = 60.0


@dataclass(frozen=True, slots=True)
class Call:
    """One call the simulator received, as the benchmarks check it."""

    number: int
    operation: str
    #: Wall-clock seconds (Unix time) of arrival and of the answer (or dropped connection).
    received: float
    answered: float | None
    http_status: int | None
    status_code: str | None
    additional_info: str | None
    #: The scripted fault that shaped the answer ("http-503", "drop-after-processing").
    fault: str | None
    #: PushEvseStatus: its ActionType; ChargeDetailRecord: None.
    action: str | None
    #: PushEvseStatus: the (EvseID, status) pairs pushed; ChargeDetailRecord: (SessionID,).
    items: tuple[Any, ...]
    #: Whether the simulator processed it (stored what it carried) before answering.
    processed: bool


def _items(record: RecordedRequest) -> tuple[str | None, tuple[Any, ...]]:
    body = record.json if isinstance(record.json, dict) else {}
    if record.operation == "PushEvseStatus":
        part = body.get("OperatorEvseStatus") or {}
        pairs = tuple((r.get("EvseID"), r.get("EvseStatus"))
                      for r in part.get("EvseStatusRecord") or ())
        return body.get("ActionType"), pairs
    if record.operation == "ChargeDetailRecord":
        return None, (body.get("SessionID"),)
    return None, ()


def _call(record: RecordedRequest) -> Call:
    received = record.received_at.timestamp()
    answered = None if record.ended is None else received + (record.ended - record.started)
    action, items = _items(record)
    processed = record.message is not None and record.fault in (None, "drop-after-processing")
    return Call(record.number, record.operation, received, answered, record.http_status,
                record.status_code, record.additional_info, record.fault, action, items,
                processed)


def _calls(sim: Simulator, operation: str) -> list[Call]:
    return [_call(r) for r in sim.requests_of(operation)]


def _fail_percentage(sim: Simulator, percent: float, kinds: list[str], operation: str | None,
                     seed: int) -> None:
    sim.faults.fail_percentage(percent, kinds=[FaultKind(k) for k in kinds],
                               operation=operation, seed=seed)


_COMMANDS: Final[Mapping[str, Callable[..., Any]]] = {
    "calls": _calls,
    "overlaps": lambda sim: len(sim.overlaps),
    "max_calls_per_minute": lambda sim, operation: sim.max_calls_per_minute(operation),
    "evse_status": lambda sim, operator_id: dict(sim.state.evse_status_of(operator_id)),
    "cdr_sessions": lambda sim: sorted(sim.state.cdrs),
    "cdr_count": lambda sim: len(sim.state.cdrs),
    "fail_percentage": _fail_percentage,
    "clear_faults": lambda sim: sim.faults.clear(),
    "reset": lambda sim: sim.reset(),
}


def _child(conn: multiprocessing.connection.Connection, pki_dir: str,
           settings: dict[str, Any]) -> None:
    # The simulator logs every answer at info level: only warnings and above here.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(_serve(conn, Path(pki_dir), settings))


async def _serve(conn: multiprocessing.connection.Connection, pki_dir: Path,
                 settings: dict[str, Any]) -> None:
    config = SimulatorConfig.from_pki_dir(pki_dir, **settings)
    loop = asyncio.get_running_loop()
    async with Simulator(config) as sim:
        conn.send(("ok", sim.url))
        while True:
            command, args = await loop.run_in_executor(None, conn.recv)
            if command == "stop":
                conn.send(("ok", None))
                return
            try:
                result = _COMMANDS[command](sim, *args)
            except Exception as exc:  # told to the parent, which raises it
                conn.send(("error", f"{command}: {exc!r}"))
            else:
                conn.send(("ok", result))


class SimulatorError(RuntimeError):
    """The simulator process failed to start or to answer a command."""


class SimulatorProcess:
    """A ``Simulator`` in a child process; use as ``async with SimulatorProcess(...)``.

    ``settings`` are ``SimulatorConfig`` fields (``rate_limits``, ``status_update_upserts``).
    """

    def __init__(self, pki_dir: Path, **settings: Any) -> None:
        self._pki_dir = pki_dir
        self._settings = settings
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._lock = asyncio.Lock()
        self.url = ""

    async def __aenter__(self) -> SimulatorProcess:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_child, args=(child, str(self._pki_dir),
                                                       self._settings), daemon=True)
        process.start()
        child.close()
        self._process, self._conn = process, parent
        self.url = str(await self._receive())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        process = self._process
        if process is None:
            return
        try:
            if process.is_alive():
                await self.call("stop")
        except (SimulatorError, OSError, EOFError):
            pass
        await asyncio.to_thread(process.join, 10.0)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join, 5.0)
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None

    async def _receive(self) -> Any:
        conn = self._conn
        assert conn is not None
        ready = await asyncio.to_thread(conn.poll, WAIT_SECONDS)
        if not ready:
            raise SimulatorError("the simulator process did not answer in time")
        status, value = await asyncio.to_thread(conn.recv)
        if status != "ok":
            raise SimulatorError(str(value))
        return value

    async def call(self, command: str, *args: Any) -> Any:
        """Run one command in the child (see ``_COMMANDS``); its result."""
        async with self._lock:
            assert self._conn is not None
            self._conn.send((command, args))
            return await self._receive()

    async def calls(self, operation: str) -> list[Call]:
        """Every call of ``operation`` received so far, in order of arrival."""
        found: list[Call] = await self.call("calls", operation)
        return found

    async def overlaps(self) -> int:
        """How many pairs of calls of a serialized operation overlapped."""
        count: int = await self.call("overlaps")
        return count

    async def max_calls_per_minute(self, operation: str) -> int:
        """The most calls of ``operation`` within any rolling minute."""
        count: int = await self.call("max_calls_per_minute", operation)
        return count

    async def evse_status(self, operator_id: str) -> dict[str, str]:
        """The statuses the simulator holds for the operator, by EvseID."""
        found: dict[str, str] = await self.call("evse_status", operator_id)
        return found

    async def cdr_sessions(self) -> list[str]:
        """The SessionIDs of every CDR the simulator holds."""
        found: list[str] = await self.call("cdr_sessions")
        return found

    async def cdr_count(self) -> int:
        """How many CDRs the simulator holds."""
        count: int = await self.call("cdr_count")
        return count

    async def fail_percentage(self, percent: float, kinds: list[FaultKind], *,
                              operation: str | None = None, seed: int = 7) -> None:
        """Fail about ``percent`` % of calls (of ``operation``) with one of ``kinds``."""
        await self.call("fail_percentage", percent, [str(k) for k in kinds], operation, seed)

    async def clear_faults(self) -> None:
        """Remove every scripted fault."""
        await self.call("clear_faults")

    async def reset(self) -> None:
        """Forget what was stored and recorded."""
        await self.call("reset")
