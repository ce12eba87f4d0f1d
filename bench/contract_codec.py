"""Contract validation and OICP serialisation per message, against plain ``json``.

For each message, the connector's way against ``json.loads``/``json.dumps`` of the same
bytes (the baseline: what no check at all costs):

* bus contract, reading: ``parse_envelope`` (UTF-8, JSON, envelope and data checked
  against the type's schema, the ``Envelope`` built) of the documented example of each
  message type the backend sends, and of a status change; also a message that breaks
  the contract (the full validator words its errors, the slow path);
* bus contract, writing: ``make_delivery_result`` (checked as it is built) and
  ``Envelope.to_bytes``;
* OICP: ``codec.encode`` of the request models the connector sends (PushEvseStatus with
  one record and with 1,000, a CDR, AuthorizeStart) and ``codec.decode`` of those bytes
  (parsed with exact decimals, checked and built by the models), against
  ``json.dumps``/``json.loads`` of the same JSON.

Checked: every documented example passes the contract, and what ``codec.encode`` writes
decodes to an equal model (the round trip the figures time is a faithful one).
When ``jsonschema_rs`` or ``orjson`` happen to be installed (neither is a dependency),
their time for the same work is printed too, to tell whether one would pay.
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from bench.harness import REPO, Report, common_options, run
from hubject_connector.bus import contract
from hubject_connector.bus.contract import (
    MESSAGE_SPECS,
    Direction,
    MessageType,
    Outcome,
    make_delivery_result,
    parse_envelope,
)
from hubject_connector.oicp import codec
from hubject_connector.translate import outbound
from hubject_connector.translate.outbound import Context
from hubject_connector.translate.times import zone_named

_FENCE: Final = re.compile(r"^```json\n(?P<body>.*?)^```\s*$", re.S | re.M)
CONTEXT: Final = Context(operator_id="DE*ABC", operator_name="ABC Charging",
                         zone=zone_named("Europe/Berlin"))


def contract_examples() -> dict[str, dict[str, Any]]:
    """The documented example of each message type in docs/contract.md, by type."""
    text = (REPO / "docs" / "contract.md").read_text(encoding="utf-8")
    found: dict[str, dict[str, Any]] = {}
    for match in _FENCE.finditer(text):
        try:
            document = json.loads(match["body"])
        except ValueError:
            continue
        if isinstance(document, dict) and isinstance(document.get("type"), str):
            found.setdefault(document["type"], document)
    return found


def per_call(function: Callable[[], object], *, seconds: float) -> float:
    """Microseconds per call of ``function``: the best of a few timed rounds."""
    function()
    rounds: list[float] = []
    calls = 1
    # Grow the round until it lasts a tenth of the time given, then take five.
    while True:
        started = time.perf_counter()
        for _ in range(calls):
            function()
        elapsed = time.perf_counter() - started
        if elapsed >= seconds / 10 or calls >= 1_000_000:
            break
        calls *= 2
    rounds.append(elapsed / calls)
    for _ in range(4):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        rounds.append((time.perf_counter() - started) / calls)
    return min(rounds) * 1e6


class Timer:
    """Times pairs (the connector's call, the baseline's) into the report."""

    def __init__(self, report: Report, seconds: float) -> None:
        self.report = report
        self.seconds = seconds

    def pair(self, label: str, connector: Callable[[], object],
             baseline: Callable[[], object], baseline_name: str) -> float:
        """Print the connector's µs per message and the baseline's; their ratio."""
        ours = per_call(connector, seconds=self.seconds)
        theirs = per_call(baseline, seconds=self.seconds)
        self.report.note(f"{label}: {ours:,.1f} µs per message; {baseline_name} "
                         f"{theirs:,.1f} µs (ratio to baseline {ours / theirs:.1f}x the time)")
        return ours


def status_document() -> dict[str, Any]:
    """A status change as a backend sends it."""
    return {
        "specversion": "1.0", "id": str(uuid.uuid4()), "source": "urn:bench:backend",
        "type": str(MessageType.EVSE_STATUS), "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json", "subject": "DE*ABC*E123456*1",
        "data": {"evse_id": "DE*ABC*E123456*1", "status": "Occupied"},
    }


def optional(module: str) -> Any:
    """``module`` if it is installed, else None."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


async def main(args: argparse.Namespace) -> Report:
    """The benchmark (module doc)."""
    seconds = 0.2 if args.quick else 2.0
    report = Report("Contract validation and OICP serialisation (bench/contract_codec.py)",
                    options=f"best of 5 rounds of about {seconds / 10:g} s each per figure")
    report.note(report.options)
    timer = Timer(report, seconds)
    examples = contract_examples()
    inbound = [t for t, spec in MESSAGE_SPECS.items() if spec.direction is Direction.TO_CONNECTOR]
    accepted = [t for t in inbound if str(t) in examples
                and _parses(json.dumps(examples[str(t)]).encode())]
    report.check("every documented message the backend sends passes the contract",
                 len(accepted) == len(inbound),
                 f"{len(accepted)} of {len(inbound)} types")

    # --- the bus contract, reading ---
    status = json.dumps(status_document(), separators=(",", ":")).encode()
    timer.pair("parse_envelope, EVSE status change", lambda: parse_envelope(status),
               lambda: json.loads(status), "json.loads")
    for message_type in (MessageType.CDR, MessageType.EVSE_UPSERT,
                         MessageType.AUTHORIZATION_START_REQUEST):
        body = json.dumps(examples[str(message_type)]).encode()
        timer.pair(f"parse_envelope, {message_type.removeprefix(contract.TYPE_PREFIX)} "
                   f"({len(body)} bytes)", functools.partial(parse_envelope, body),
                   functools.partial(json.loads, body), "json.loads")
    broken = status_document()
    broken["data"]["evse_id"] = "DE*ABC*E123456*1\n"
    broken_body = json.dumps(broken).encode()
    timer.pair("parse_envelope, a status change breaking the contract (errors worded)",
               lambda: _parses(broken_body), lambda: json.loads(broken_body), "json.loads")

    # --- the bus contract, writing ---
    result = make_delivery_result(str(uuid.uuid4()), Outcome.ACCEPTED,
                                  message_type=str(MessageType.EVSE_STATUS),
                                  subject="DE*ABC*E123456*1", status_code="000",
                                  status_description="Success")
    result_dict = result.to_dict()
    timer.pair("make_delivery_result (built and checked)",
               lambda: make_delivery_result(str(uuid.uuid4()), Outcome.ACCEPTED,
                                            message_type=str(MessageType.EVSE_STATUS),
                                            subject="DE*ABC*E123456*1", status_code="000",
                                            status_description="Success"),
               lambda: json.dumps(result_dict), "json.dumps of the same result")
    timer.pair("Envelope.to_bytes (delivery result)", result.to_bytes,
               lambda: json.dumps(result_dict, separators=(",", ":")).encode(), "json.dumps")

    # --- OICP ---
    cdr_data = copy.deepcopy(examples[str(MessageType.CDR)]["data"])
    models: list[tuple[str, object]] = [
        ("PushEvseStatus, 1 record", outbound.push_evse_status(
            "update", "DE*ABC", "ABC Charging", [("DE*ABC*E123456*1", "Occupied")])),
        ("PushEvseStatus, 1,000 records", outbound.push_evse_status(
            "fullLoad", "DE*ABC", "ABC Charging",
            [(f"DE*ABC*E{n:06d}*1", "Available") for n in range(1000)])),
        ("ChargeDetailRecord", outbound.charge_detail_record(cdr_data, CONTEXT)),
        ("AuthorizeStart", outbound.authorize_start(
            examples[str(MessageType.AUTHORIZATION_START_REQUEST)]["data"], CONTEXT)),
    ]
    round_trips = 0
    for label, model in models:
        wire = codec.encode(model)
        plain = json.loads(wire)
        timer.pair(f"codec.encode, {label} ({len(wire):,} bytes)",
                   functools.partial(codec.encode, model),
                   functools.partial(json.dumps, plain, separators=(",", ":")), "json.dumps")
        timer.pair(f"codec.decode, {label}", functools.partial(codec.decode, type(model), wire),
                   functools.partial(json.loads, wire), "json.loads")
        round_trips += codec.decode(type(model), wire) == model
    report.check("what codec.encode writes decodes to an equal model", round_trips == len(models),
                 f"{round_trips} of {len(models)} models")

    # --- would a dependency pay? (only when installed; neither is a dependency) ---
    rs = optional("jsonschema_rs")
    if rs is not None:
        document = json.loads(status)
        schema = contract.schema_for(MessageType.EVSE_STATUS)
        resources = [(str(doc["$id"]), doc) for doc in contract.schema_documents().values()]
        try:
            registry = rs.Registry(resources)
            validator = rs.validator_for(schema, registry=registry)
        except (AttributeError, TypeError, ValueError) as exc:
            report.note(f"jsonschema_rs installed but not usable here: {exc!r}")
        else:
            timer.pair("jsonschema_rs is_valid, EVSE status change (not used: informative)",
                       lambda: validator.is_valid(document), lambda: json.loads(status),
                       "json.loads")
            quick = contract._quick_checks()["evse.status.v1.json"]
            if quick is not None:
                timer.pair("the contract's compiled check alone, EVSE status change",
                           lambda: quick(document), lambda: json.loads(status), "json.loads")
    fast_json = optional("orjson")
    if fast_json is not None:
        wire = codec.encode(models[1][1])
        timer.pair("orjson.loads, PushEvseStatus 1,000 records (not used: informative)",
                   lambda: fast_json.loads(wire), lambda: json.loads(wire), "json.loads")
    return report


def _parses(body: bytes) -> bool:
    try:
        parse_envelope(body)
    except contract.ContractError:
        return False
    return True


def parser() -> argparse.ArgumentParser:
    """The command line."""
    made = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_options(made)
    return made


if __name__ == "__main__":
    run(main, parser())
