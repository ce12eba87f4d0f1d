"""``hubject-connector simulator``: run the fake Hubject until Ctrl-C (or SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from hubject_connector import cli
from hubject_connector.errors import ConfigError
from hubject_connector.simulator.app import run_simulator
from hubject_connector.simulator.config import DEFAULT_PORT, SimulatorConfig, load_cards


def register(subparsers: Any) -> None:
    """Add ``simulator`` to the command line."""
    parser = subparsers.add_parser(
        "simulator",
        help="run a fake Hubject (mutual TLS) for tests and the sandbox",
        description=(
            "Serve every CPO-to-Hubject OICP 2.3 operation under https://HOST:PORT/api/oicp "
            "with mutual TLS, answering as Hubject does, until Ctrl-C or SIGTERM. Give a "
            "development PKI folder (written by `hubject-connector certs dev-pki DIR`) or "
            "the server certificate, its key and the CA that client certificates must "
            "come from."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to bind, 0 for any free one (default: {DEFAULT_PORT})")
    parser.add_argument("--pki", type=Path, metavar="DIR",
                        help="development PKI folder: server.pem/.key, ca.pem, hubject-client.*")
    parser.add_argument("--cert", type=Path, metavar="FILE", help="server certificate (PEM)")
    parser.add_argument("--key", type=Path, metavar="FILE", help="server private key (PEM)")
    parser.add_argument("--ca", type=Path, metavar="FILE",
                        help="CA that client certificates must be issued by (PEM)")
    parser.add_argument("--cards", type=Path, metavar="FILE",
                        help="card list, TOML ([[card]] uid/evco_id, provider_id, authorized) "
                             "or JSON")
    parser.add_argument("--rate-limit", action="append", default=[], metavar="OPERATION=N",
                        help="calls per minute for an operation instead of Hubject's "
                             "(repeatable; N=0 for unlimited)")
    parser.set_defaults(handler=simulator_command)


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The simulator configuration the command line describes. Raises ``ConfigError``."""
    settings: dict[str, Any] = {"host": args.host, "port": args.port}
    if args.cards is not None:
        settings["cards"] = load_cards(args.cards)
    limits: dict[str, int | None] = {}
    for item in args.rate_limit:
        name, _, value = item.partition("=")
        if not value.isdigit():
            raise ConfigError("--rate-limit", f"{item!r}: expected OPERATION=N")
        limits[name.strip()] = int(value) or None
    settings["rate_limits"] = limits
    explicit = (args.cert, args.key, args.ca)
    if args.pki is not None:
        if any(p is not None for p in explicit):
            raise ConfigError("--pki", "give either --pki or --cert/--key/--ca, not both")
        return SimulatorConfig.from_pki_dir(args.pki, **settings)
    if any(p is None for p in explicit):
        raise ConfigError("--pki", "give --pki DIR, or all of --cert, --key and --ca")
    return SimulatorConfig(server_cert=args.cert, server_key=args.key, client_ca=args.ca,
                           **settings)


async def simulator_command(args: argparse.Namespace) -> int:
    """Handler of ``simulator``: serve until SIGINT or SIGTERM, then stop cleanly."""
    config = config_from_args(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with run_simulator(config) as sim:
            print(f"Hubject simulator listening on {sim.url}", flush=True)
            print(f"client certificates must come from {config.client_ca}; "
                  f"{len(sim.cards)} cards on the list; Ctrl-C stops", flush=True)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    print("Hubject simulator stopped", file=sys.stderr, flush=True)
    return cli.EXIT_OK
