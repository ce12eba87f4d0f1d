"""Fixtures for the simulator over real mutual TLS: the shared dev PKI and a CPO client."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hubject_connector.certs import DevPki
from hubject_connector.oicp.operations import OPERATIONS
from hubject_connector.simulator import Simulator
from tests.unit.simulator import payloads


@pytest.fixture(scope="session")
def hubject_simulator_pki(dev_pki: DevPki) -> DevPki:
    """The plugin's simulator serves with the shared dev PKI (one PKI per test run)."""
    return dev_pki


def client_ssl(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    """A client context trusting ``ca``, presenting ``cert`` if given."""
    context = ssl.create_default_context(cafile=ca)
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


@dataclass
class Answer:
    """What the simulator answered: HTTP status, headers and the JSON body (if any)."""

    status: int
    headers: dict[str, str]
    json: Any
    text: str


class CpoClient:
    """A plain aiohttp client with a CPO certificate, talking to a simulator."""

    def __init__(self, simulator: Simulator, session: aiohttp.ClientSession) -> None:
        self.simulator = simulator
        self.session = session

    def url(self, operation: str, operator: str = payloads.OPERATOR_ID) -> str:
        """The full URL of an operation for ``operator``."""
        op = OPERATIONS[operation]
        params = {"operatorID": operator} if "{operatorID}" in op.path else {}
        return self.simulator.url + op.url_path(**params)

    async def post(self, operation: str, body: dict[str, Any] | bytes,
                   operator: str = payloads.OPERATOR_ID) -> Answer:
        """POST a body to an operation and read the answer."""
        data = body if isinstance(body, bytes) else payloads.encode(body)
        async with self.session.post(self.url(operation, operator), data=data,
                                     headers={"Content-Type": "application/json"}) as response:
            text = await response.text()
            is_json = response.content_type == "application/json"
            return Answer(response.status, dict(response.headers),
                          await response.json() if is_json else None, text)


@pytest.fixture
async def cpo(hubject_simulator: Simulator, dev_pki: DevPki) -> AsyncIterator[CpoClient]:
    """A client with the dev PKI's CPO certificate (OperatorID DE*ABC)."""
    context = client_ssl(dev_pki.ca_cert, dev_pki.cpo_client_cert, dev_pki.cpo_client_key)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        yield CpoClient(hubject_simulator, session)
