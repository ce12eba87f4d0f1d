"""The embedded bus's disk fills up while the backend posts messages.

The bus file lives on a tmpfs of its own (16 MiB, mounted for the test; this needs root,
as in CI). While Hubject holds the CDRs the backend posted, a filler file takes all but a
little of the free space, and the backend posts on until the disk is full; then Hubject
answers the held CDRs 503, so that their retries are to be written to the full disk.
What a user must see: the backend's POST answered 503 with the reason (send it again), a
log line saying the bus failed, the file intact (``PRAGMA integrity_check``), and once
there is space again every message accepted before, and the one sent again, at Hubject
exactly once.

A read-only disk is not simulated: remounting the tmpfs read-only while the bus holds its
file open for writing is refused ("mount point is busy"), root ignores file modes, and
tmpfs has no immutable attribute.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from structlog.testing import capture_logs

from hubject_connector.simulator import Simulator
from tests.integration.flows import messages
from tests.integration.flows.conftest import FlowEnv, eventually
from tests.resilience.conftest import WAIT, Burst, Envs, assert_nothing_lost, settled

pytestmark = pytest.mark.slow

#: Size of the bus's own disk (the WAL alone grows to 4 MiB before a checkpoint).
TMPFS_SIZE = "16m"
#: Most POSTs tried before the disk must have refused one.
MOST_POSTS = 400
#: Room left beside the filler: a few messages fit before the disk is full.
ROOM = 128 * 1024


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of TMPFS_SIZE mounted for the test (skipped where mounting is not allowed)."""
    where = tmp_path / "bus-disk"
    where.mkdir()
    mounted = _mount("-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(where))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        # Lazily: the bus may still hold the file open if the test failed early.
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def default_structlog() -> Iterator[None]:
    """structlog's defaults, so that ``capture_logs`` sees the bus's error lines."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)


async def post(session: aiohttp.ClientSession, url: str, doc: dict[str, Any]) -> tuple[int, Any]:
    """POST one message to the bus's HTTP API as the backend does; status and JSON body."""
    async with session.post(f"{url}/v1/messages", data=json.dumps(doc).encode(),
                            headers={"Content-Type": "application/cloudevents+json"}) as answer:
        return answer.status, await answer.json()


def fill(disk: Path, room: int) -> Path:
    """Take all but ``room`` free bytes of ``disk`` with a filler file; the file."""
    filler = disk / "filler"
    chunk = b"\0" * 4096
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError:  # ENOSPC: the disk is full
            pass
    os.truncate(filler, max(0, filler.stat().st_size - room))
    return filler


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` of the bus file, through a connection of its own."""
    db = sqlite3.connect(path)
    try:
        (answer,) = db.execute("PRAGMA integrity_check").fetchone()
        return str(answer)
    finally:
        db.close()


@pytest.fixture
async def disk_env(envs: Envs, simulator: Simulator, small_disk: Path,
                   default_structlog: None) -> FlowEnv:
    """A connector whose embedded bus is on the small disk."""
    return await envs.make("embedded", simulator, bus_path=small_disk / "bus.sqlite3")


def settle_failures(logs: Sequence[MutableMapping[str, Any]]) -> int:
    """How many messages the bus could not settle (its file failed)."""
    return sum(1 for entry in logs if entry["event"] == "bus.settle_failed")


async def test_a_full_disk_refuses_clearly_and_keeps_what_it_took(
    disk_env: FlowEnv, small_disk: Path, simulator: Simulator,
) -> None:
    env = disk_env
    connector = await env.connector()
    bus_url = getattr(connector.bus, "http_url", None)
    assert bus_url
    before = Burst.make(cdrs=5, evses=2, changes=6)
    # Hubject holds the five CDRs, then answers 503: their retries are to be stored on
    # a full disk, which fails; they must come back once there is room again.
    simulator.faults.http_503(10_000, operation="ChargeDetailRecord")
    held = [simulator.faults.hold(operation="ChargeDetailRecord") for _ in before.cdrs]
    offered = [messages.cdr() for _ in range(MOST_POSTS)]
    taken: list[dict[str, Any]] = []
    refused: list[tuple[dict[str, Any], Any]] = []

    async with aiohttp.ClientSession() as session:
        for doc in before.interleaved():
            assert (await post(session, bus_url, doc))[0] == 202
        for hold in held:
            async with asyncio.timeout(WAIT):
                await hold.arrived.wait()
        filler = fill(small_disk, ROOM)
        with capture_logs() as logs:
            for doc in offered:
                status, body = await post(session, bus_url, doc)
                assert status in (202, 503), body
                if status == 503:
                    refused.append((doc, body))
                    break
                taken.append(doc)
            assert refused, f"the bus took {len(taken)} messages on a full disk"
            doc, body = refused[0]
            assert "nothing was stored" in body["error"]
            assert "disk is full" in body["error"]
            assert any(entry["event"] == "bus.http_api_failed" for entry in logs)
            for hold in held:
                hold.release()
            await eventually(lambda: settle_failures(logs) >= len(held),
                             "the held CDRs' retries to fail on the full disk")

        simulator.faults.clear()
        filler.unlink()
        assert integrity(small_disk / "bus.sqlite3") == "ok"
        # The backend sends the refused one again, as a 503 tells it to.
        assert (await post(session, bus_url, doc))[0] == 202

    everything = Burst([*before.cdrs, *taken, doc], before.statuses)
    await settled(env.backend, everything)
    # Each CDR was tried (503) before the disk filled, and accepted once after.
    assert_nothing_lost(env, everything, exactly_one_call=False)
    assert integrity(small_disk / "bus.sqlite3") == "ok"
