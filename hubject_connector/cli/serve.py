"""``hubject-connector serve``: run the connector until SIGTERM or SIGINT.

One process: the flows to Hubject, the inbound HTTPS server Hubject calls, and the ops
server (/metrics, /healthz, /readyz); see ``hubject_connector.app``. Exit codes: 0 after a
graceful stop, 2 for a bad setting or certificate (``key: problem`` on stderr), 1 when
the bus or the state store cannot be reached.
"""

from __future__ import annotations

import argparse
from typing import Any

from hubject_connector import cli
from hubject_connector.app import serve


def register(subparsers: Any) -> None:
    """Add ``serve`` to the command line."""
    parser = subparsers.add_parser(
        "serve",
        help="run the connector: flows to Hubject, the inbound server, the ops server",
        description=(
            "Run the connector until SIGTERM or SIGINT: carry the backend's messages to "
            "Hubject, answer Hubject's remote starts, stops and reservations through the "
            "backend, and serve /metrics, /healthz and /readyz on the ops port. Certificate "
            "and key files are checked at start; a bad setting or file exits 2 naming it, "
            "an unreachable bus or state store exits 1. On SIGTERM, work in flight is "
            "finished or handed back within service.shutdown_grace_seconds, then exit 0."
        ),
    )
    cli.add_config_option(parser)
    parser.set_defaults(handler=serve_command)


async def serve_command(args: argparse.Namespace) -> int:
    """Handler of ``serve``."""
    config = cli.config_from_args(args, check_files=True)
    await serve(config)
    return cli.EXIT_OK
