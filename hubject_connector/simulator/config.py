"""What a simulator instance is told: its certificates, its card list, its rules.

The card list stands for the EMPs behind Hubject: a card (an RFID UID or a contract ID,
EvcoID) on the list belongs to an EMP and is authorized or refused; a card not on the list
is unknown and refused. Card files are TOML (``[[card]]`` tables) or JSON (a list of
objects, or an object with a ``card`` list), with the keys ``uid`` or ``evco_id``, and
optionally ``provider_id`` and ``authorized``.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from hubject_connector.certs import DevPki
from hubject_connector.errors import ConfigError
from hubject_connector.oicp import patterns
from hubject_connector.oicp.operations import OPERATIONS, Direction

#: The ProviderID of cards whose entry names none and whose ID does not carry one (a UID).
DEFAULT_PROVIDER_ID: Final = "DE-SIM"
#: The simulator's default port on the command line (the Python API defaults to port 0).
DEFAULT_PORT: Final = 8444

# File names written by certs.make_dev_pki, for `--pki DIR`.
_PKI_FILES: Final = {
    "client_ca": "ca.pem",
    "server_cert": "server.pem",
    "server_key": "server.key",
    "emp_cert": "hubject-client.pem",
    "emp_key": "hubject-client.key",
}


def _compact(value: str) -> str:
    return value.replace("-", "").replace("*", "").upper()


@dataclass(frozen=True, slots=True)
class Card:
    """One card on the list: a UID or an EvcoID, the EMP it belongs to, and the verdict.

    ``provider_id`` defaults to the ProviderID inside the EvcoID (its first five
    characters, e.g. "DE-8EO" of "DE-8EO-CAB123456-7"), or ``DEFAULT_PROVIDER_ID`` for a UID.
    """

    uid: str | None = None
    evco_id: str | None = None
    provider_id: str | None = None
    authorized: bool = True

    def __post_init__(self) -> None:
        if (self.uid is None) == (self.evco_id is None):
            raise ConfigError("card", "give exactly one of uid and evco_id")
        if self.uid is not None and not patterns.matches("UID", self.uid):
            raise ConfigError("card.uid", f"{self.uid!r} is not a UID (8, 14 or 20 hex digits)")
        if self.evco_id is not None and not patterns.matches("EvcoID", self.evco_id):
            raise ConfigError("card.evco_id", f"{self.evco_id!r} is not an EvcoID")
        if self.provider_id is not None and not patterns.matches("ProviderID", self.provider_id):
            raise ConfigError("card.provider_id", f"{self.provider_id!r} is not a ProviderID")

    @property
    def provider(self) -> str:
        """The ProviderID of the EMP this card belongs to."""
        if self.provider_id is not None:
            return self.provider_id
        if self.evco_id is not None:
            compact = _compact(self.evco_id)
            return f"{compact[:2]}-{compact[2:5]}"
        return DEFAULT_PROVIDER_ID

    def matches(self, *, uid: str | None, evco_id: str | None) -> bool:
        """Whether a presented UID or EvcoID is this card (separators and case ignored)."""
        if self.uid is not None and uid is not None:
            return self.uid.upper() == uid.upper()
        if self.evco_id is not None and evco_id is not None:
            return _compact(self.evco_id) == _compact(evco_id)
        return False


def load_cards(path: Path) -> tuple[Card, ...]:
    """Read a card list from a TOML or JSON file (by suffix). Raises ``ConfigError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("cards", f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError
        raise ConfigError("cards", f"{path}: not valid {path.suffix or 'TOML'}: {exc}") from exc
    if isinstance(data, Mapping):
        data = data.get("card", data.get("cards", []))
    if not isinstance(data, list):
        raise ConfigError("cards", f"{path}: expected a list of cards")
    return tuple(card_from_mapping(item, where=f"{path}: card {i + 1}")
                 for i, item in enumerate(data))


def card_from_mapping(item: Any, *, where: str = "card") -> Card:
    """One card from a parsed mapping with the keys of a card file."""
    allowed = {"uid", "evco_id", "provider_id", "authorized"}
    if not isinstance(item, Mapping):
        raise ConfigError("cards", f"{where}: expected a table/object")
    unknown = set(item) - allowed
    if unknown:
        raise ConfigError("cards", f"{where}: unknown keys {', '.join(sorted(unknown))}")
    authorized = item.get("authorized", True)
    if not isinstance(authorized, bool):
        raise ConfigError("cards", f"{where}: authorized must be true or false")
    try:
        return Card(uid=item.get("uid"), evco_id=item.get("evco_id"),
                    provider_id=item.get("provider_id"), authorized=authorized)
    except ConfigError as exc:
        raise ConfigError("cards", f"{where}: {exc.message}") from exc


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything a ``Simulator`` needs. Paths are PEM files.

    ``client_ca`` is the CA that client certificates must chain to (the handshake is refused
    otherwise). ``emp_cert``/``emp_key`` are what the simulator presents when it calls a CPO
    as an EMP (the dev PKI's Hubject client certificate).
    """

    server_cert: Path
    server_key: Path
    client_ca: Path
    host: str = "127.0.0.1"
    #: 0 picks a free port; ``Simulator.port`` tells which.
    port: int = 0
    cards: tuple[Card, ...] = ()
    #: Calls per minute by operation name, replacing the operation table's; None: unlimited.
    rate_limits: Mapping[str, int | None] = field(default_factory=dict)
    #: Sub-operators whose EvseIDs an operator may push: OperatorID → its sub-OperatorIDs.
    sub_operators: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: The text spec refuses a status "update" for an EVSE without a status record; True
    #: makes such an update insert the record instead.
    status_update_upserts: bool = False
    #: Refuse (400) a CDR whose SessionID this simulator did not hand out.
    cdr_requires_known_session: bool = False
    emp_cert: Path | None = None
    emp_key: Path | None = None
    #: Seconds a stopping server waits for requests still being answered.
    shutdown_timeout: float = 1.0
    #: Largest request body accepted, in bytes (a fullLoad of many EVSEs is large).
    max_body_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        for name, limit in self.rate_limits.items():
            op = OPERATIONS.get(name)
            if op is None or op.direction is not Direction.CPO_TO_HUBJECT:
                known = ", ".join(n for n, o in OPERATIONS.items()
                                  if o.direction is Direction.CPO_TO_HUBJECT)
                raise ConfigError(f"rate_limits.{name}", f"not an operation sent to Hubject; "
                                  f"known: {known}")
            if limit is not None and limit < 1:
                raise ConfigError(f"rate_limits.{name}", "must be at least 1 (or None)")
        for owner, subs in self.sub_operators.items():
            for operator_id in (owner, *subs):
                if not patterns.matches("OperatorID", operator_id):
                    raise ConfigError("sub_operators", f"{operator_id!r} is not an OperatorID")

    def rate_limit(self, operation: str) -> int | None:
        """Calls per minute allowed for ``operation`` (None: unlimited)."""
        if operation in self.rate_limits:
            return self.rate_limits[operation]
        return OPERATIONS[operation].rate_per_minute

    def replace(self, **changes: Any) -> SimulatorConfig:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dev_pki(cls, pki: DevPki, **settings: Any) -> SimulatorConfig:
        """Serve with the dev PKI's server certificate, trusting its CA for clients."""
        return cls(
            server_cert=pki.server_cert,
            server_key=pki.server_key,
            client_ca=pki.ca_cert,
            emp_cert=pki.hubject_client_cert,
            emp_key=pki.hubject_client_key,
            **settings,
        )

    @classmethod
    def from_pki_dir(cls, directory: Path, **settings: Any) -> SimulatorConfig:
        """Like ``from_dev_pki``, from a folder written by ``certs dev-pki``."""
        paths = {key: directory / name for key, name in _PKI_FILES.items()}
        missing = [p.name for p in paths.values() if not p.is_file()]
        if missing:
            raise ConfigError(
                "pki", f"{directory}: missing {', '.join(missing)}; write a development PKI "
                f"there with `hubject-connector certs dev-pki {directory}`",
            )
        return cls(
            server_cert=paths["server_cert"], server_key=paths["server_key"],
            client_ca=paths["client_ca"], emp_cert=paths["emp_cert"], emp_key=paths["emp_key"],
            **settings,
        )
