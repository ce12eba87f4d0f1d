"""The exception tree. Every error the connector raises derives from ``ConnectorError``.

Errors carry what a caller needs to act on them: the OICP status code they suggest
(as mobilityhouse/ocpp gives each error its wire code) and whether trying again may help.
I/O errors from libraries are re-raised as one of these ``from`` the original.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Root of every error raised by hubject-connector."""

    #: Whether repeating the same action later may succeed.
    transient: bool = False


class ConfigError(ConnectorError):
    """The configuration is invalid. ``key`` names the offending setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class OicpError(ConnectorError):
    """A protocol-level problem with an OICP message."""


class TransportError(ConnectorError):
    """Talking to Hubject failed below the OICP layer (TLS, connection, HTTP, timeout)."""

    transient = True


class BusError(ConnectorError):
    """The internal queue failed or refused a message."""

    transient = True


class StateError(ConnectorError):
    """The state store failed (database unreachable, schema newer than this release)."""

    transient = True
