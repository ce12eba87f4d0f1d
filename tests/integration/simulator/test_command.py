"""``hubject-connector simulator`` as a user runs it: serve, answer, stop on a signal."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from hubject_connector.certs import DevPki
from tests.integration.simulator.conftest import client_ssl
from tests.unit.simulator import payloads


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serves_until_signalled(dev_pki: DevPki, tmp_path: Path,
                                      signum: signal.Signals) -> None:
    cards = tmp_path / "cards.toml"
    cards.write_text(f'[[card]]\nuid = "{payloads.UID}"\nprovider_id = "DE-8EO"\n')
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hubject_connector", "--log-level", "warning", "simulator",
        "--pki", str(dev_pki.directory), "--port", "0", "--cards", str(cards),
        "--rate-limit", "PushEvseStatus=0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            first = (await process.stdout.readline()).decode()
        assert first.startswith("Hubject simulator listening on https://127.0.0.1:"), first
        url = first.rsplit(" ", 1)[-1].strip()
        context = client_ssl(dev_pki.ca_cert, dev_pki.cpo_client_cert, dev_pki.cpo_client_key)
        start = url + "/charging/v21/operators/DE*ABC/authorize/start"
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as s,
            s.post(start, data=payloads.encode(payloads.authorize_start())) as response,
        ):
            answer = await response.json()
        assert answer["AuthorizationStatus"] == "Authorized"
        assert answer["ProviderID"] == "DE-8EO"
        process.send_signal(signum)
        async with asyncio.timeout(30):
            code = await process.wait()
        assert code == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
