"""A RabbitMQ node of the test's own, to stop and start again: ``OwnBroker``.

The shared broker at 127.0.0.1:5672 is everybody's; a restart test runs a second node of
the installed ``rabbitmq-server`` beside it, with its own name, AMQP and distribution
ports, data and log directories in a temporary directory, and no plugins. It listens on
127.0.0.1 only (a config file of its own replaces /etc/rabbitmq/rabbitmq.conf, whose
listener would collide with the shared broker's port).

``rabbitmq-server`` runs the node as the ``rabbitmq`` user when started by root, so the
directory is handed to that user; ``rabbitmqctl -n <node>`` reaches the node with the
Erlang cookie of that user (/var/lib/rabbitmq/.erlang.cookie), which the CLI reads too.
Stopping is ``rabbitmqctl -n <node> stop``; at teardown a node that does not stop so is
killed by the pid in its pid file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Final

#: Upper bound of a node's start (the first one creates its database) or stop.
BOOT_WAIT: Final = 90.0


def free_port() -> int:
    """A TCP port nothing listens on at the moment."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def installed() -> str | None:
    """Why a node of our own cannot run here, or None when it can."""
    if shutil.which("rabbitmq-server") is None and not Path("/usr/sbin/rabbitmq-server").exists():
        return "rabbitmq-server is not installed"
    if os.geteuid() != 0:
        try:
            if pwd.getpwuid(os.geteuid()).pw_name != "rabbitmq":
                return "rabbitmq-server runs only as root or as the rabbitmq user"
        except KeyError:
            return "the current user has no name; rabbitmq-server needs root or rabbitmq"
    return None


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class OwnBroker:
    """A RabbitMQ node on a free port with its data in a temporary directory."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="hc-resilience-rabbit-"))
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"resilience-{uuid.uuid4().hex[:8]}@localhost"
        (self.directory / "mnesia").mkdir()
        (self.directory / "log").mkdir()
        (self.directory / "enabled_plugins").write_text("[].\n", encoding="utf-8")
        (self.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n", encoding="utf-8")
        if os.geteuid() == 0:
            # The node runs as the rabbitmq user: it must own what it writes.
            owner = pwd.getpwnam("rabbitmq")
            for path in [self.directory, *self.directory.rglob("*")]:
                os.chown(path, owner.pw_uid, owner.pw_gid)

    @property
    def url(self) -> str:
        """The AMQP URL of the node (guest may log in from the loopback address)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _environment(self) -> dict[str, str]:
        directory = self.directory
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(directory / "node.pid"),
        }

    async def _ctl(self, *args: str, give_up_after: float = BOOT_WAIT) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            _tool("rabbitmqctl"), "-n", self.node, *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            async with asyncio.timeout(give_up_after):
                out, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            return 1, f"rabbitmqctl {' '.join(args)} did not finish"
        return process.returncode or 0, out.decode("utf-8", "replace")

    async def start(self) -> None:
        """Start the node (detached) and wait until it accepts AMQP sessions."""
        process = await asyncio.create_subprocess_exec(
            _tool("rabbitmq-server"), "-detached", env=self._environment(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await process.communicate()
        if process.returncode:
            raise AssertionError(f"rabbitmq-server -detached failed: {out.decode()}")
        code, text = 1, ""
        async with asyncio.timeout(BOOT_WAIT):
            while True:
                # await_startup fails at once while the node is not yet registered.
                code, text = await self._ctl("await_startup", "--timeout", "60")
                if code == 0:
                    return
                await asyncio.sleep(0.5)
        raise AssertionError(  # pragma: no cover - asyncio.timeout raises first
            f"node {self.node} did not start: {text}\n{self.log_tail()}")

    async def stop(self) -> None:
        """Stop the node (``rabbitmqctl stop``: the broker shuts down cleanly)."""
        code, text = await self._ctl("stop")
        if code != 0:
            raise AssertionError(f"rabbitmqctl -n {self.node} stop failed: {text}")

    async def crash(self) -> None:
        """Kill the node with SIGKILL, as a power cut or the OOM killer would."""
        pid = int((self.directory / "node.pid").read_text(encoding="utf-8").strip())
        os.kill(pid, signal.SIGKILL)
        # Down once the node no longer answers (its port closed with the process).
        async with asyncio.timeout(BOOT_WAIT):
            while True:
                code, _ = await self._ctl("ping", give_up_after=10.0)
                if code != 0:
                    return
                await asyncio.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the node's log, for a failure's message."""
        logs = sorted((self.directory / "log").glob("*.log"))
        if not logs:
            return "(no log)"
        text = logs[0].read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])

    async def destroy(self) -> None:
        """Stop the node if it runs (kill it if it does not stop); remove its directory."""
        code, _ = await self._ctl("stop", give_up_after=30.0)
        if code != 0:
            self._kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _kill(self) -> None:
        """SIGKILL the node by its pid file, if that pid is still our node."""
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.directory / "node.pid").read_text().strip())
            # Only our node: a stale pid file may name a process that is not ours.
            if self.node.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
