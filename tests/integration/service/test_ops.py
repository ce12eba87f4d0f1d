"""The ops server on its own: /metrics, /healthz, /readyz over real HTTP on 127.0.0.1.

The readiness checks here are plain functions over a switchboard, so each answer can be
driven; the service's real checks (bus, store, certificates) are tested in test_service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from hubject_connector import ops


class Switchboard:
    """Which parts claim to be ready."""

    def __init__(self) -> None:
        self.problems: dict[str, str | None] = {"bus": None, "store": None}

    def check(self, name: str) -> ops.Check:
        return lambda: self.problems[name]


@pytest.fixture
def board() -> Switchboard:
    return Switchboard()


@pytest.fixture
async def ops_url(board: Switchboard) -> AsyncIterator[str]:
    """An ops server on a free port, with a registry holding one counter."""
    registry = CollectorRegistry()
    Counter("hubject_connector_test_things", "Things.", registry=registry).inc(3)
    readiness = ops.Readiness({"bus": board.check("bus"), "store": board.check("store")})
    registry.register(ops.ReadinessCollector(readiness))
    app = web.Application()
    ops.setup_ops(app, registry=registry, readiness=readiness)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def get(url: str) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, response.headers["Content-Type"], body if body else text


async def test_healthz_says_alive(ops_url: str) -> None:
    status, _, body = await get(ops_url + "/healthz")
    assert status == 200
    assert body["status"] == "alive"


async def test_readyz_is_200_when_every_check_passes(ops_url: str) -> None:
    status, _, body = await get(ops_url + "/readyz")
    assert status == 200
    assert body == {"status": "ready", "checks": {"bus": "ok", "store": "ok"}, "not_ready": {}}


async def test_readyz_is_503_naming_what_is_not_ready(ops_url: str, board: Switchboard) -> None:
    board.problems["bus"] = "the bus is not connected"
    status, _, body = await get(ops_url + "/readyz")
    assert status == 503
    assert body["status"] == "not ready"
    assert body["not_ready"] == {"bus": "the bus is not connected"}
    assert body["checks"]["store"] == "ok"


async def test_a_check_that_raises_counts_as_not_ready(ops_url: str, board: Switchboard) -> None:
    del board.problems["store"]  # the check now raises KeyError
    status, _, body = await get(ops_url + "/readyz")
    assert status == 503
    assert "KeyError" in body["not_ready"]["store"]


async def test_metrics_are_prometheus_text_with_each_check(
    ops_url: str, board: Switchboard
) -> None:
    board.problems["store"] = "closed"
    status, content_type, text = await get(ops_url + "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    samples = {
        (sample.name, sample.labels.get("check")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("hubject_connector_test_things_total", None)] == 3
    assert samples[("hubject_connector_ready", "bus")] == 1
    assert samples[("hubject_connector_ready", "store")] == 0


async def test_an_unknown_path_is_404(ops_url: str) -> None:
    status, _, _ = await get(ops_url + "/nothing-here")
    assert status == 404
