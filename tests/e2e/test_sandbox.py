"""``make run`` on a clean checkout: the sandbox completes every step, serves, and stops on Ctrl-C.

The tracked files (``git ls-files``) are copied into tmp_path, as a fresh clone would have
them, and the command ``make run`` runs there (read from the Makefile with ``make -n``) is
started with this test's Python (``-m hubject_connector``, so the copy's package is the one
imported), on free ports. The test reads the sandbox's output: every step of the demo
completed against the simulator, the ops server answers while it serves; then SIGINT ends
it all with exit 0: no traceback, the backend process gone, the ports closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp
import pytest

pytestmark = pytest.mark.slow

REPO: Final = Path(__file__).resolve().parents[2]
#: Upper bound of each wait: a broken sandbox fails the test instead of hanging it.
WAIT: Final = 120.0
#: The steps the summary must mark ok, each checked against what the simulator received.
STEPS: Final = ("EVSE data pushed", "status pushed", "card authorized",
                "remote start acknowledged", "CDR accepted")


def clean_checkout(target: Path) -> Path:
    """The repository's tracked files, as a fresh clone has them, under ``target``."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if not source.is_file():  # deleted in the working tree, not yet committed
            continue
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
    return target


def run_command(checkout: Path) -> list[str]:
    """What ``make run`` runs, as arguments after ``hubject-connector``."""
    stamp = ".venv/.installed"  # the venv it would build: this test runs with its own
    # A make above us (`make test` runs pytest) passes its flags and job server down.
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    recipe = subprocess.run(["make", "--no-print-directory", "-n", "-o", stamp, "run"],
                            cwd=checkout, env=environment, check=True, capture_output=True,
                            text=True).stdout
    lines = [line for line in recipe.splitlines() if line.strip()]
    assert len(lines) == 1, recipe
    program, *arguments = shlex.split(lines[0])
    assert program.endswith("/hubject-connector"), recipe
    return arguments


@dataclass
class Running:
    """The sandbox process and the lines it wrote so far."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    stderr: bytes = b""
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            async with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_line(self, text: str) -> str:
        """The first line containing ``text``; fails if the process ends first."""
        def found() -> str | None:
            return next((line for line in self.lines if text in line), None)

        async with asyncio.timeout(WAIT), self._changed:
            while (line := found()) is None:
                if self._reader is not None and self._reader.done():
                    raise AssertionError(f"the sandbox ended before {text!r}:\n"
                                         + "\n".join(self.lines) + await self.stderr_text())
                await self._changed.wait()
        return line

    async def stderr_text(self) -> str:
        if self.process.returncode is None:
            return ""
        assert self.process.stderr is not None
        self.stderr += await self.process.stderr.read()
        return "\n" + self.stderr.decode("utf-8", "replace")


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Running]:
    """``make run``'s sandbox in a clean checkout, on free ports; killed if left running."""
    checkout = clean_checkout(tmp_path / "checkout")
    arguments = run_command(checkout)
    assert arguments[:1] == ["sandbox"]
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("HUBJECT_CONNECTOR_", "HUBJECT_SANDBOX_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hubject_connector", *arguments, "--ports", "auto",
        cwd=checkout, env=environment, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    running = Running(process)
    running._reader = asyncio.create_task(running.read())
    try:
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        with contextlib.suppress(Exception):
            await running._reader


async def test_the_sandbox_completes_every_step_serves_and_stops_cleanly_on_sigint(
    sandbox: Running,
) -> None:
    await sandbox.wait_for_line("sandbox: serving until Ctrl-C")
    output = "\n".join(sandbox.lines)
    for step in STEPS:
        assert f"[ok] {step}:" in output, output
    assert "FAILED" not in output, output
    assert "sandbox: every step completed against the simulator" in output
    # The backend ran from the checkout (the demo a user reads), and saw its own steps through.
    started = await sandbox.wait_for_line("demo backend started")
    assert "examples/demo_backend.py" in started
    assert str(REPO) not in started
    assert "backend: all steps done" in output
    # The remote start was acknowledged with the backend's answer.
    assert re.search(r"acknowledged the remote start: Result true, StatusCode 000", output)

    # While it serves, the ops server answers with the CDR counted as delivered.
    metrics_line = await sandbox.wait_for_line("metrics:")
    metrics_url = metrics_line.split()[2]
    async with aiohttp.ClientSession() as session, session.get(metrics_url) as response:
        assert response.status == 200
        metrics = await response.text()
    assert 'hubject_connector_flow_messages_delivered_total{flow="cdr"} 1.0' in metrics
    backend_pid = int(re.findall(r"\(pid (\d+)\)", started)[0])

    sandbox.process.send_signal(signal.SIGINT)
    async with asyncio.timeout(WAIT):
        code = await sandbox.process.wait()
    stderr = await sandbox.stderr_text()
    assert code == 0, "\n".join(sandbox.lines) + stderr
    assert "Traceback" not in stderr
    assert sandbox.lines[-1] == "sandbox: stopped"
    # The backend subprocess was ended (and reaped) too; the ops port no longer answers.
    with pytest.raises(ProcessLookupError):
        os.kill(backend_pid, 0)
    host, port = metrics_url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(host, int(port))


@pytest.mark.parametrize(("option", "named"), [("--simulator-port", "--simulator-port"),
                                               ("--ops-port", "ops.port")])
async def test_a_port_in_use_exits_2_naming_it_and_how_to_avoid_it(
    tmp_path: Path, option: str, named: str
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hubject_connector", "sandbox", "--ports", "auto",
            option, str(port), "--dir", str(tmp_path / "sandbox"),
            cwd=REPO, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(WAIT):
            stdout, stderr = await process.communicate()
    errors = stderr.decode()
    assert process.returncode == 2, stdout.decode() + errors
    assert f"hubject-connector: {named}: " in errors
    assert str(port) in errors
    assert "--ports auto" in errors
    assert "Traceback" not in errors
    # Whatever had started was stopped again.
    assert stdout.decode().splitlines()[-1] == "sandbox: stopped"
