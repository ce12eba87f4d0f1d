"""A small CPO backend talking to hubject-connector's embedded bus, as a real one would.

It shows the whole contract (docs/contract.md) in a few steps:

1. pushes two charging stations' EVSEs (``evse.upsert.v1``),
2. reports a status change (``evse.status.v1``),
3. asks whether a charging card may charge (``authorization.start.request.v1``),
4. answers a remote start that an e-mobility provider sends through Hubject
   (``remote.start.command.v1``, answered with ``remote.start.reply.v1``),
5. sends the charge detail record of that session (``cdr.v1``).

The backend POSTs its messages to the connector (``POST /v1/messages``) and receives
everything the connector has for it on its webhook: delivery results, authorization
replies, and commands, which it answers in the response body. Only aiohttp is needed.

    python examples/demo_backend.py --bus http://127.0.0.1:8090 --listen 127.0.0.1:8091

The connector's ``[bus.embedded] webhook_url`` must point at
``http://<listen>/hubject``. Each line this program prints starts with ``backend:``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, web

PREFIX = "com.hubject-connector."
OPERATOR_ID = "DE*ABC"
CARD_UID = "04A1B2C3"
EVSES = ("DE*ABC*E1000*1", "DE*ABC*E1000*2")


def say(text: str) -> None:
    """One line of progress, for the person watching (and for the sandbox)."""
    print(f"backend: {text}", flush=True)


def envelope(kind: str, data: dict[str, Any], *, subject: str | None = None) -> dict[str, Any]:
    """A CloudEvents envelope of type ``com.hubject-connector.<kind>``."""
    message: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "urn:demo-backend",
        "type": PREFIX + kind,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": data,
    }
    if subject is not None:
        message["subject"] = subject
    return message


def station(evse_id: str, number: int) -> dict[str, Any]:
    """The master data of one EVSE, in the contract's snake_case OICP names."""
    return {
        "evse_id": evse_id,
        "charging_station_id": f"STATION-{number}",
        "charging_station_names": [{"lang": "en", "value": f"Demo station {number}"}],
        "address": {"country": "DEU", "city": "Berlin", "street": "Alexanderplatz",
                    "postal_code": "10178", "house_num": str(number)},
        "geo_coordinates": {"latitude": "52.521918", "longitude": "13.413215"},
        "plugs": ["Type 2 Outlet"],
        "charging_facilities": [{"power_type": "AC_3_PHASE", "power": 22}],
        "renewable_energy": True,
        "calibration_law_data_availability": "Not Available",
        "authentication_modes": ["NFC RFID Classic", "REMOTE"],
        "payment_options": ["Contract"],
        "value_added_services": ["None"],
        "accessibility": "Free publicly accessible",
        "hotline_phone_number": "+4930123456",
        "is_open_24_hours": True,
        "is_hubject_compatible": True,
        "dynamic_info_available": "true",
    }


class Backend:
    """Sends messages to the connector and waits for what comes back on the webhook."""

    def __init__(self, bus_url: str, token: str | None) -> None:
        self.bus_url = bus_url.rstrip("/")
        self.headers = {"Content-Type": "application/cloudevents+json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        # Answers by the id of the message they answer (its correlationid).
        self.answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.remote_starts: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.session: ClientSession | None = None

    async def send(self, message: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        """POST one message; the future resolves with its delivery result or reply."""
        future = asyncio.get_running_loop().create_future()
        self.answers[message["id"]] = future
        assert self.session is not None
        async with self.session.post(f"{self.bus_url}/v1/messages", json=message,
                                     headers=self.headers) as response:
            if response.status != 202:
                raise RuntimeError(f"the connector refused {message['type']}: "
                                   f"{response.status} {await response.text()}")
        return future

    async def webhook(self, request: web.Request) -> web.Response:
        """Everything the connector sends us arrives here."""
        message = await request.json()
        kind = message["type"].removeprefix(PREFIX)
        if kind == "remote.start.command.v1":
            return web.json_response(await self.answer_remote_start(message),
                                     content_type="application/cloudevents+json")
        if kind.endswith(".command.v1"):
            # Remote stop and reservations: this demo accepts them all.
            return web.json_response(reply(message, {"result": True, "status_code": "000"}),
                                     content_type="application/cloudevents+json")
        future = self.answers.pop(message.get("correlationid", ""), None)
        if future is not None and not future.done():
            future.set_result(message)
        return web.Response(status=204)

    async def answer_remote_start(self, command: dict[str, Any]) -> dict[str, Any]:
        """Start charging at the EVSE the EMP asked for (here: always possible)."""
        data = command["data"]
        say(f"remote start for {data['evse_id']} from provider {data['provider_id']}: "
            "starting charging")
        await self.remote_starts.put(command)
        return reply(command, {"result": True, "status_code": "000",
                               "session_id": data["session_id"],
                               "cpo_partner_session_id": "demo-" + data["session_id"][:8]})


def reply(command: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Our reply to a command: its reply type, correlationid = the command's id."""
    answer = envelope(command["type"].removeprefix(PREFIX).replace(".command.", ".reply."),
                      data, subject=command.get("subject"))
    answer["correlationid"] = command["id"]
    return answer


def outcome(result: dict[str, Any]) -> str:
    data = result["data"]
    if data["outcome"] == "accepted":
        return "accepted by Hubject"
    return f"{data['outcome']}: {data.get('status_code', '')} {data.get('reason', '')}".strip()


async def run(backend: Backend, wait_seconds: float) -> bool:
    """The five steps; True when Hubject accepted everything."""
    ok = True
    say("step 1/5: pushing 2 EVSEs")
    pushes = [await backend.send(envelope("evse.upsert.v1",
                                          {"operator_id": OPERATOR_ID, "evse": station(e, i)},
                                          subject=e))
              for i, e in enumerate(EVSES, start=1)]
    for evse_id, future in zip(EVSES, pushes, strict=True):
        result = await asyncio.wait_for(future, wait_seconds)
        ok &= result["data"]["outcome"] == "accepted"
        say(f"  {evse_id}: {outcome(result)}")

    say(f"step 2/5: {EVSES[0]} is now Occupied")
    result = await asyncio.wait_for(await backend.send(
        envelope("evse.status.v1", {"evse_id": EVSES[0], "status": "Occupied"},
                 subject=EVSES[0])), wait_seconds)
    ok &= result["data"]["outcome"] == "accepted"
    say(f"  status: {outcome(result)}")

    say(f"step 3/5: may card {CARD_UID} charge at {EVSES[1]}?")
    answer = await asyncio.wait_for(await backend.send(envelope(
        "authorization.start.request.v1",
        {"operator_id": OPERATOR_ID, "evse_id": EVSES[1],
         "identification": {"kind": "rfid_mifare_family", "uid": CARD_UID}},
        subject=EVSES[1])), wait_seconds)
    status = answer["data"]["authorization_status"]
    ok &= status == "Authorized"
    say(f"  {status}, session {answer['data'].get('session_id')}")

    say("step 4/5: ready for a remote start (the EMP sends it through Hubject)")
    command = await asyncio.wait_for(backend.remote_starts.get(), wait_seconds * 4)
    session_id = command["data"]["session_id"]

    say(f"step 5/5: sending the CDR of session {session_id}")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=45)
    cdr = {
        "session_id": session_id,
        "operator_id": OPERATOR_ID,
        "evse_id": command["data"]["evse_id"],
        "identification": command["data"]["identification"],
        "session_start": start.isoformat(),
        "charging_start": (start + timedelta(minutes=1)).isoformat(),
        "charging_end": (start + timedelta(minutes=40)).isoformat(),
        "session_end": (start + timedelta(minutes=42)).isoformat(),
        "meter_value_start": "1000.000",
        "meter_value_end": "1014.250",
        "consumed_energy": "14.250",
    }
    if "partner_product_id" in command["data"]:
        cdr["partner_product_id"] = command["data"]["partner_product_id"]
    result = await asyncio.wait_for(
        await backend.send(envelope("cdr.v1", cdr, subject=session_id)), wait_seconds)
    ok &= result["data"]["outcome"] == "accepted"
    say(f"  CDR: {outcome(result)}")
    say("all steps done" if ok else "done, with refusals (see above)")
    return bool(ok)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bus", default="http://127.0.0.1:8090",
                        help="the connector's embedded bus API")
    parser.add_argument("--listen", default="127.0.0.1:8091",
                        help="host:port of this backend's webhook")
    parser.add_argument("--token-file", type=Path, help="bearer token of the bus API")
    parser.add_argument("--wait", type=float, default=30.0,
                        help="seconds to wait for each answer")
    args = parser.parse_args()
    token = args.token_file.read_text().strip() if args.token_file else None
    backend = Backend(args.bus, token)
    app = web.Application()
    app.router.add_post("/hubject", backend.webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    host, _, port = args.listen.rpartition(":")
    await web.TCPSite(runner, host, int(port)).start()
    # Ctrl-C or SIGTERM (the sandbox stopping us) ends the program cleanly, at any step.
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    ok = False
    try:
        async with ClientSession() as backend.session:
            steps = asyncio.create_task(run(backend, args.wait))
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({steps, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if steps.done():
                try:
                    ok = steps.result()
                except (TimeoutError, RuntimeError, ClientError) as exc:
                    say(f"failed: {exc or 'no answer in time'}")
                say("serving the webhook until stopped (Ctrl-C)")
                await stopped
            else:
                steps.cancel()
                ok = True  # stopped on purpose before the end: not a failure
    finally:
        await runner.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
