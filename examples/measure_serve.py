"""Measure the memory and CPU of ``hubject-connector serve``: idle, and through a burst.

This is how the figures in docs/operations.md ("Sizing") and the Helm chart's resource
requests were obtained; run it to size your own machine:

    .venv/bin/python examples/measure_serve.py [--evses 200] [--statuses 2000] [--cdrs 200]

It writes a development PKI and a configuration into a temporary folder, starts the
Hubject simulator in this process and ``serve`` as a process of its own (embedded bus,
SQLite state, exactly as ``hubject-connector serve --config FILE`` runs in a container),
and reads that process's resident memory (VmRSS, and its peak VmHWM) and CPU time (utime +
stime) from /proc (Linux only):

1. idle: for ``--idle`` seconds after /readyz answers 200;
2. burst: ``--evses`` EVSE upserts, ``--statuses`` status changes and ``--cdrs`` CDRs,
   posted to the embedded bus's HTTP API as a backend would, until every one is delivered
   to the simulator; CPU seconds are counted from the first post to the last delivery;
3. after: idle again for ``--idle`` seconds.

CPU is given as CPU time, which other processes on the machine do not change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from hubject_connector.certs import make_dev_pki
from hubject_connector.cli.config import to_toml
from hubject_connector.logs import configure_logging
from hubject_connector.simulator import Simulator, SimulatorConfig

PREFIX = "com.hubject-connector."
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Reading:
    """One look at the process."""

    at: float
    rss_mib: float
    peak_mib: float
    cpu_seconds: float


def read(pid: int) -> Reading:
    """RSS, peak RSS and CPU time of ``pid`` now, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields 14 and 15 (utime, stime), counted after the ")" that ends the command name.
    cpu = (int(stat[11]) + int(stat[12])) / TICKS
    return Reading(time.monotonic(), int(fields["VmRSS"].split()[0]) / 1024,
                   int(fields["VmHWM"].split()[0]) / 1024, cpu)


def envelope(kind: str, data: dict[str, Any], subject: str, at: datetime) -> dict[str, Any]:
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "urn:measure",
            "type": PREFIX + kind, "time": at.isoformat(), "subject": subject,
            "datacontenttype": "application/json", "data": data}


def evse(evse_id: str, number: int) -> dict[str, Any]:
    return {
        "evse_id": evse_id, "charging_station_id": f"S{number}",
        "charging_station_names": [{"lang": "en", "value": f"Station {number}"}],
        "address": {"country": "DEU", "city": "Berlin", "street": "Alexanderplatz",
                    "postal_code": "10178", "house_num": str(number % 1000)},
        "geo_coordinates": {"latitude": "52.521918", "longitude": "13.413215"},
        "plugs": ["Type 2 Outlet"], "charging_facilities": [{"power_type": "AC_3_PHASE",
                                                             "power": 22}],
        "renewable_energy": True, "calibration_law_data_availability": "Not Available",
        "authentication_modes": ["NFC RFID Classic"], "payment_options": ["Contract"],
        "value_added_services": ["None"], "accessibility": "Free publicly accessible",
        "hotline_phone_number": "+4930123456", "is_open_24_hours": True,
        "is_hubject_compatible": True, "dynamic_info_available": "true",
    }


def cdr(evse_id: str, at: datetime) -> dict[str, Any]:
    start = at - timedelta(hours=1)
    return {
        "session_id": str(uuid.uuid4()), "operator_id": "DE*ABC", "evse_id": evse_id,
        "identification": {"kind": "rfid_mifare_family", "uid": "04A1B2C3"},
        "session_start": start.isoformat(), "charging_start": start.isoformat(),
        "charging_end": (start + timedelta(minutes=50)).isoformat(),
        "session_end": (start + timedelta(minutes=55)).isoformat(),
        "meter_value_start": "100.000", "meter_value_end": "120.500",
        "consumed_energy": "20.500",
    }


async def wait_ready(ops: str) -> None:
    async with ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(ops + "/readyz") as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("serve did not become ready")


async def idle(pid: int, seconds: float) -> tuple[Reading, Reading]:
    first = read(pid)
    await asyncio.sleep(seconds)
    return first, read(pid)


def millicores(first: Reading, last: Reading) -> float:
    return 1000 * (last.cpu_seconds - first.cpu_seconds) / (last.at - first.at)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evses", type=int, default=200)
    parser.add_argument("--statuses", type=int, default=2000)
    parser.add_argument("--cdrs", type=int, default=200)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of each idle phase")
    args = parser.parse_args()
    configure_logging("console", "warning")  # the simulator's lines would drown the result
    folder = Path(tempfile.mkdtemp(prefix="measure-serve-"))
    pki = make_dev_pki(folder / "pki", operator_id="DE*ABC")
    ports = {name: _free_port() for name in ("ops", "bus", "inbound")}
    async with Simulator(SimulatorConfig.from_dev_pki(pki, status_update_upserts=True)) as sim:
        config = {
            "hubject": {"operator_id": "DE*ABC", "operator_name": "Measure", "base_url": sim.url,
                        "client_cert": str(pki.cpo_client_cert),
                        "client_key": str(pki.cpo_client_key), "ca_bundle": str(pki.ca_cert),
                        # The simulator counts Hubject's limits per minute: lifted here,
                        # so that the burst measures the connector, not the waiting.
                        "rate_limits": {"PushEvseData": 100000, "PushEvseStatus": 100000,
                                        "ChargeDetailRecord": 100000}},
            "bus": {"kind": "embedded", "embedded": {
                "path": str(folder / "bus.sqlite3"), "http_port": ports["bus"]}},
            "inbound": {"host": "127.0.0.1", "port": ports["inbound"],
                        "tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key),
                        "client_ca": str(pki.ca_cert)},
            "ops": {"port": ports["ops"]},
            "state": {"sqlite": {"path": str(folder / "state.sqlite3")}},
            "logging": {"format": "json", "level": "warning"},
        }
        sim.set_rate_limit("PushEvseData", None)
        sim.set_rate_limit("PushEvseStatus", None)
        sim.set_rate_limit("ChargeDetailRecord", None)
        config_file = folder / "connector.toml"
        config_file.write_text(to_toml(config), encoding="utf-8")
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith("HUBJECT_CONNECTOR_")}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hubject_connector", "serve", "--config", str(config_file),
            env=environment,
        )
        try:
            ops = f"http://127.0.0.1:{ports['ops']}"
            await wait_ready(ops)
            started = read(process.pid)
            idle_first, idle_last = await idle(process.pid, args.idle)
            burst_first = read(process.pid)
            await burst(f"http://127.0.0.1:{ports['bus']}", ops, args)
            burst_last = read(process.pid)
            after_first, after_last = await idle(process.pid, args.idle)
        finally:
            process.terminate()
            await process.wait()
    messages = args.evses + args.statuses + args.cdrs
    result = {
        "rss_mib_at_ready": round(started.rss_mib, 1),
        "rss_mib_idle": round(idle_last.rss_mib, 1),
        "cpu_millicores_idle": round(millicores(idle_first, idle_last), 1),
        "messages_in_burst": messages,
        "burst_seconds": round(burst_last.at - burst_first.at, 2),
        "burst_cpu_seconds": round(burst_last.cpu_seconds - burst_first.cpu_seconds, 2),
        "cpu_ms_per_message": round(
            1000 * (burst_last.cpu_seconds - burst_first.cpu_seconds) / messages, 2),
        "rss_mib_peak": round(after_last.peak_mib, 1),
        "rss_mib_after_burst": round(after_last.rss_mib, 1),
        "cpu_millicores_idle_after_burst": round(millicores(after_first, after_last), 1),
    }
    print(json.dumps(result, indent=2))
    return 0


async def burst(bus: str, ops: str, args: argparse.Namespace) -> None:
    """Post the burst as a backend would, then wait until every message has its outcome."""
    now = datetime.now(UTC).replace(microsecond=0)
    evse_ids = [f"DE*ABC*E{n:05d}*1" for n in range(args.evses)]
    messages = [envelope("evse.upsert.v1", {"operator_id": "DE*ABC", "evse": evse(e, n)}, e,
                         now) for n, e in enumerate(evse_ids)]
    statuses = ("Available", "Occupied")
    messages += [envelope("evse.status.v1", {"evse_id": evse_ids[n % len(evse_ids)],
                                             "status": statuses[(n // len(evse_ids)) % 2]},
                          evse_ids[n % len(evse_ids)], now + timedelta(milliseconds=n))
                 for n in range(args.statuses)]
    messages += [envelope("cdr.v1", cdr(evse_ids[n % len(evse_ids)], now), "cdr", now)
                 for n in range(args.cdrs)]
    headers = {"Content-Type": "application/cloudevents+json"}
    async with ClientSession() as session:
        for message in messages:
            async with session.post(bus + "/v1/messages", data=json.dumps(message),
                                    headers=headers) as response:
                if response.status != 202:
                    raise RuntimeError(f"{response.status} {await response.text()}")
    wanted = {"evse": args.evses, "evse-status": args.statuses, "cdr": args.cdrs}
    async with ClientSession() as session:
        for _ in range(6000):
            async with session.get(ops + "/metrics") as response:
                done = finished(await response.text())
            if all(done.get(flow, 0) >= count for flow, count in wanted.items()):
                return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the burst was not finished in time: {done}")


OUTCOME = re.compile(r'^hubject_connector_flow_messages_(delivered|rejected|dead_lettered|dropped)'
                     r'_total\{flow="([^"]+)"\} ([0-9.e+]+)$')


def finished(metrics: str) -> dict[str, float]:
    """Messages with a final outcome, by flow, from the service's /metrics."""
    counts: dict[str, float] = {}
    for line in metrics.splitlines():
        match = OUTCOME.match(line)
        if match:
            counts[match.group(2)] = counts.get(match.group(2), 0.0) + float(match.group(3))
    return counts


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
