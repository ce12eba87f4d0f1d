"""Configuration: one TOML file plus HUBJECT_CONNECTOR_* environment overrides.

The sections below are the single description of every setting. Secrets (private keys,
passwords) are never values here, only paths to files that hold them.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import re
import tomllib
import types
import typing
import urllib.parse
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from hubject_connector.errors import ConfigError
from hubject_connector.oicp import patterns
from hubject_connector.oicp.operations import OPERATIONS, Direction

QA_URL = "https://service-qa.hubject.com/api/oicp"
PRODUCTION_URL = "https://service.hubject.com/api/oicp"


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """Retry policy for calls to Hubject (exponential backoff with full jitter)."""

    attempts: int = 5
    initial_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class HubjectConfig:
    """How to reach Hubject and who we are there."""

    operator_id: str = ""
    environment: Literal["qa", "production"] = "qa"
    #: Overrides the environment's URL (the simulator, a proxy). Ends before the OICP path.
    base_url: str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    #: Extra chain certificates for the client certificate, if not inside client_cert.
    client_chain: Path | None = None
    #: The CA bundle Hubject's server certificate chains to. Trusted explicitly.
    ca_bundle: Path | None = None
    timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 10.0
    #: How often the certificate files are checked for rotation.
    cert_reload_interval_seconds: float = 30.0
    retry: RetryConfig = field(default_factory=RetryConfig)
    #: Calls per minute by operation name (operation table); unset ones use Hubject's limits.
    rate_limits: dict[str, int] = field(default_factory=dict)
    #: OperatorName written in EVSE data, status and pricing pushes when the backend
    #: leaves ``operator_name`` out (OICP requires it there).
    operator_name: str = ""
    #: Further OperatorIDs whose EVSEs this connector may push (sub-operators).
    sub_operator_ids: tuple[str, ...] = ()
    #: IANA time zone of the charge points, for times the backend gives in UTC: OICP wants
    #: the charge point's local offset. Per EVSE or station, the backend may name its own.
    time_zone: str = "UTC"
    #: Allow an http:// base_url (never in production): only for a local test proxy.
    insecure_plaintext: bool = False

    @property
    def url(self) -> str:
        """The base URL in force."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return PRODUCTION_URL if self.environment == "production" else QA_URL


@dataclass(frozen=True, slots=True)
class RabbitMQConfig:
    """The RabbitMQ adapter's broker and names."""

    url: str = "amqp://guest@127.0.0.1:5672/"
    #: File holding the broker password; takes precedence over a password in the URL.
    password_file: Path | None = None
    exchange: str = "hubject-connector"
    queue_prefix: str = "hubject-connector"
    dead_letter_exchange: str = "hubject-connector.dlx"
    prefetch: int = 32
    #: Pause between attempts to reconnect after the broker went away.
    reconnect_interval_seconds: float = 5.0
    #: Declare work queues as quorum queues (replicated); classic if the broker refuses.
    quorum_queues: bool = True
    #: Shown by the broker (rabbitmqctl list_connections, management UI).
    connection_name: str = "hubject-connector"
    #: Deliveries of one message before a quorum queue dead-letters it (a message that
    #: crashes the process cannot loop forever).
    delivery_limit: int = 20


@dataclass(frozen=True, slots=True)
class EmbeddedBusConfig:
    """The embedded bus: a durable SQLite queue and an HTTP API for the backend."""

    path: Path = Path("var/bus.sqlite3")
    http_host: str = "127.0.0.1"
    http_port: int = 8090
    #: Where commands for the backend are POSTed; the response body is the reply.
    webhook_url: str | None = None
    #: How long a message being handled stays hidden from other consumers; renewed while
    #: the handler runs, so it only matters after a crash (then it is redelivered).
    lease_seconds: float = 30.0
    #: How often other processes' messages are looked for (same-process ones wake at once).
    poll_interval_seconds: float = 0.5
    #: File holding the bearer token the HTTP API requires (required off loopback).
    auth_token_file: Path | None = None
    #: Most dead letters kept; the oldest go first beyond it.
    max_dead_letters: int = 10000
    #: Dead letters older than this are removed.
    dead_letter_max_age_seconds: float = 30 * 86400.0
    #: How long delivery results and replies stay readable through GET /v1/results.
    results_retention_seconds: float = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class BusConfig:
    """Which internal queue to use."""

    kind: Literal["embedded", "rabbitmq"] = "embedded"
    rabbitmq: RabbitMQConfig = field(default_factory=RabbitMQConfig)
    embedded: EmbeddedBusConfig = field(default_factory=EmbeddedBusConfig)
    #: Delays for transient failures before a message is retried.
    retry_delays_seconds: tuple[float, ...] = (5.0, 30.0, 300.0)
    #: Default deadline of request/reply exchanges with the backend.
    request_timeout_seconds: float = 8.0


@dataclass(frozen=True, slots=True)
class InboundConfig:
    """The HTTPS server Hubject calls (remote start/stop, reservations)."""

    host: str = "0.0.0.0"  # noqa: S104 - a server for Hubject listens on every interface
    port: int = 8443
    path_prefix: str = "/api/oicp"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    client_cert_mode: Literal["required", "optional", "off"] = "required"
    allow_ips: tuple[str, ...] = ()
    reply_deadline_seconds: float = 8.0
    #: With client_cert_mode "off" behind a TLS-terminating proxy: the header in which the
    #: proxy passes the verified client certificate (URL-encoded PEM), if it does.
    client_cert_header: str | None = None
    #: Status code answered to Hubject when the backend gives no valid reply in time.
    timeout_status_code: str = "501"
    #: Largest request body accepted (413 beyond).
    max_body_bytes: int = 1024 * 1024
    #: Longest time to read a request (slow clients are cut off).
    read_timeout_seconds: float = 10.0
    #: How often the server certificate files are checked for rotation.
    cert_reload_interval_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class SqliteStateConfig:
    """The embedded state store."""

    path: Path = Path("var/state.sqlite3")


@dataclass(frozen=True, slots=True)
class PostgresStateConfig:
    """The PostgreSQL state store, for several replicas."""

    #: libpq-style URL; leave the password out and use password_file.
    dsn: str = "postgresql://postgres@127.0.0.1:5432/hubject_connector"
    password_file: Path | None = None
    #: Schema holding the connector's tables (created and migrated by the connector).
    schema: str = "hubject_connector"
    pool_size: int = 4


@dataclass(frozen=True, slots=True)
class StateConfig:
    """What must survive a restart: EVSEs at Hubject, last statuses, CDR outcomes."""

    kind: Literal["sqlite", "postgresql"] = "sqlite"
    sqlite: SqliteStateConfig = field(default_factory=SqliteStateConfig)
    postgresql: PostgresStateConfig = field(default_factory=PostgresStateConfig)


@dataclass(frozen=True, slots=True)
class FlowsConfig:
    """How backend messages are carried to Hubject."""

    #: Most status records in one PushEvseStatus.
    status_batch_size: int = 1000
    #: Longest time a status change waits for its batch to fill before it is pushed.
    status_max_wait_seconds: float = 1.0
    #: Push every known status again (fullLoad) this often; unset: never.
    status_full_refresh_seconds: float | None = None
    #: At most one progress notification per session in this time (Hubject: 5 minutes).
    progress_interval_seconds: float = 300.0
    #: Transient CDR failures are retried this long before the CDR is dead-lettered.
    cdr_retry_for_seconds: float = 7 * 86400.0
    #: First and longest pause between CDR retries (doubling in between).
    cdr_retry_initial_delay_seconds: float = 5.0
    cdr_retry_max_delay_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The running service as a whole."""

    #: After SIGTERM: time to finish work in flight before exiting.
    shutdown_grace_seconds: float = 20.0


@dataclass(frozen=True, slots=True)
class OpsConfig:
    """The operations HTTP server: /metrics, /healthz, /readyz."""

    host: str = "127.0.0.1"
    port: int = 9090


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """Log output."""

    #: Unset: "console" when stderr is a terminal (a person reads it), "json" otherwise.
    format: Literal["json", "console"] | None = None
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration."""

    hubject: HubjectConfig = field(default_factory=HubjectConfig)
    bus: BusConfig = field(default_factory=BusConfig)
    inbound: InboundConfig = field(default_factory=InboundConfig)
    ops: OpsConfig = field(default_factory=OpsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    state: StateConfig = field(default_factory=StateConfig)
    flows: FlowsConfig = field(default_factory=FlowsConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)


# --------------------------------------------------------------------------------------
# Loading: TOML file < HUBJECT_CONNECTOR_* environment < nothing else.
# --------------------------------------------------------------------------------------

#: Prefix of every environment variable the loader reads.
ENV_PREFIX: Final = "HUBJECT_CONNECTOR_"
#: Environment variable naming the configuration file (when no path is passed).
CONFIG_ENV: Final = "HUBJECT_CONNECTOR_CONFIG"
#: Separates sections in environment variable names: HUBJECT_CONNECTOR_BUS__RABBITMQ__URL.
ENV_SEPARATOR: Final = "__"

#: Settings whose value, a path, points at a secret. ``redacted`` hides them.
SECRET_PATHS: Final = frozenset(
    {"hubject.client_key", "bus.rabbitmq.password_file", "inbound.tls_key",
     "bus.embedded.auth_token_file", "state.postgresql.password_file"}
)
#: Settings that name files the connector reads; checked with ``check_files=True``.
FILE_SETTINGS: Final = (
    "hubject.client_cert",
    "hubject.client_key",
    "hubject.client_chain",
    "hubject.ca_bundle",
    "bus.rabbitmq.password_file",
    "inbound.tls_cert",
    "inbound.tls_key",
    "inbound.client_ca",
    "bus.embedded.auth_token_file",
    "state.postgresql.password_file",
)
REDACTED: Final = "<redacted>"

# Names under which people paste secrets. They are never settings: secrets live in files.
_SECRET_NAMES: Final = frozenset(
    {"password", "passwd", "pass", "secret", "token", "api_key", "apikey", "key",
     "private_key", "passphrase", "credentials", "client_secret"}
)
_PRIVATE_KEY: Final = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
# "scheme://user:password@": the password part, for URLs urllib cannot parse.
_USERINFO_PASSWORD: Final = re.compile(r"(//[^/@:\s]*:)[^@/\s]*@")
# The one mapping-typed setting: hubject.rate_limits.
_RATE_LIMITS: Final = dict[str, int]
# Durations where 0 makes sense (retry at once); every other *_seconds must be above 0.
_ZERO_ALLOWED: Final = frozenset({"hubject.retry.initial_delay_seconds"})
# What the connector may answer Hubject for a command the backend did not confirm.
_INBOUND_REFUSAL_CODES: Final = frozenset({"400", "501", "510", "601", "602", "603", "700"})
# Hubject waits 10 s for an answer to a remote start, network included (design.md).
_HUBJECT_ANSWER_LIMIT_SECONDS: Final = 10.0


class ConfigErrors(ConfigError):
    """Every problem found in one configuration, reported at once.

    ``errors`` holds one ``ConfigError`` per problem; ``str()`` lists them one per line.
    """

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        # The file-level error first, then by key, so related settings sit together.
        self.errors = sorted(errors, key=lambda e: (e.key != "config", e.key))
        keys = ", ".join(dict.fromkeys(e.key for e in self.errors))
        count = len(self.errors)
        super().__init__(keys, f"{count} configuration error{'s' if count != 1 else ''}")

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


@dataclass(frozen=True, slots=True)
class _EnvText:
    """A value from the environment: text still to be parsed into the field's type."""

    text: str
    variable: str


class _Invalid:
    """Marks a value that failed conversion (its error is already recorded)."""


_INVALID: Final = _Invalid()


class _Collector:
    """Gathers errors; names the environment variable when a value came from one."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []
        self.sources: dict[str, str] = {}

    def add(self, key: str, message: str) -> None:
        # One problem per key: a value that failed to parse is replaced by its default,
        # and the later rule checks must not complain about that default.
        if any(e.key == key for e in self.errors):
            return
        variable = self.sources.get(key.split("[", 1)[0])
        if variable is not None:
            message = f"{message} (from {variable})"
        self.errors.append(ConfigError(key, message))


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    check_files: bool = False,
) -> Config:
    """Read the configuration: defaults, then the TOML file, then the environment.

    ``path`` is the TOML file; without it, ``$HUBJECT_CONNECTOR_CONFIG`` names it, and
    without that only defaults and the environment count. Environment variables
    ``HUBJECT_CONNECTOR_<SECTION>__<KEY>`` override the file. With ``check_files`` the
    certificate, key and password files must exist and be readable.

    Raises ``ConfigErrors`` (a ``ConfigError``) listing every problem found.
    """
    env = {} if env is None else env
    errors = _Collector()
    if path is None and env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_toml(path, errors)
    _overlay_env(raw, env, errors)
    config = _build(Config, raw, "", errors)
    assert isinstance(config, Config)
    _check(config, errors, check_files=check_files)
    if errors.errors:
        raise ConfigErrors(errors.errors)
    return config


def _read_toml(path: Path, errors: _Collector) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        errors.add("config", f"cannot read {path}: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        errors.add("config", f"{path} is not valid TOML: {exc}")
    except UnicodeDecodeError as exc:
        errors.add("config", f"{path} is not UTF-8: {exc}")
    return {}


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _unknown_message(name: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    if name.lower() in _SECRET_NAMES:
        files = [c for c in choices if c.endswith(("_file", "_key"))]
        where = f" and set {' or '.join(repr(f) for f in files)}" if files else ""
        return (
            "secrets are never written in the configuration: put the secret in a file"
            f"{where} to its path"
        )
    return "unknown setting" + _suggest(name, choices)


def _overlay_env(raw: dict[str, Any], env: Mapping[str, str], errors: _Collector) -> None:
    """Put HUBJECT_CONNECTOR_* values into the raw tree, resolved against the dataclasses."""
    for variable in sorted(env):
        if not variable.startswith(ENV_PREFIX) or variable == CONFIG_ENV:
            continue
        parts = variable[len(ENV_PREFIX):].lower().split(ENV_SEPARATOR)
        cls: Any = Config
        node = raw
        trail: list[str] = []
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            key = ".".join([*trail, part])
            if cls == _RATE_LIMITS:
                # Operation names are matched case-insensitively later, in _rate_limits.
                if not last:
                    errors.add(key, f"unknown setting (from {variable})")
                    break
                node[part] = _EnvText(env[variable], variable)
                errors.sources[key] = variable
                break
            names = {f.name: f for f in dataclasses.fields(cls)}
            if part not in names:
                errors.add(key, f"{_unknown_message(part, names)} (from {variable})")
                break
            hint = _hints(cls)[part]
            trail.append(part)
            if last:
                if dataclasses.is_dataclass(hint):
                    errors.add(key, f"is a section: set its keys, e.g. "
                                    f"{variable}{ENV_SEPARATOR}<KEY> (from {variable})")
                else:
                    node[part] = _EnvText(env[variable], variable)
                    errors.sources[key] = variable
                break
            if not (dataclasses.is_dataclass(hint) or hint == _RATE_LIMITS):
                errors.add(key + "." + parts[index + 1],
                           f"unknown setting: {key} is not a section (from {variable})")
                break
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
            cls = hint


def _build(cls: type, raw: Any, prefix: str, errors: _Collector) -> Any:
    """Build dataclass ``cls`` from a raw TOML/env tree, recording every problem."""
    if not isinstance(raw, dict):
        errors.add(prefix or "config", f"must be a table (a [{prefix}] section)")
        return cls()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    for name in raw:
        if name not in fields:
            key = f"{prefix}.{name}" if prefix else str(name)
            errors.add(key, _unknown_message(str(name), fields))
    values: dict[str, Any] = {}
    for name in fields:
        if name not in raw:
            continue
        key = f"{prefix}.{name}" if prefix else name
        value = _convert(hints[name], raw[name], key, errors)
        if value is not _INVALID:
            values[name] = value
    return cls(**values)


def _describe(value: Any) -> str:
    if isinstance(value, _EnvText):
        return repr(value.text)
    return f"{value!r} ({type(value).__name__})"


def _convert(hint: Any, value: Any, key: str, errors: _Collector) -> Any:
    """``value`` (TOML or environment text) as type ``hint``, or ``_INVALID``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    text = value.text.strip() if isinstance(value, _EnvText) else None
    # The value as given: stripped text from the environment, else the TOML value.
    given = value if text is None else text
    if isinstance(given, str) and _PRIVATE_KEY.search(given):
        errors.add(key, "looks like a private key pasted as a value: keep the key in a file "
                        "and give the file's path")
        return _INVALID

    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        if text == "":
            return None  # an empty variable unsets an optional setting
        return _convert(inner[0], value, key, errors)
    if dataclasses.is_dataclass(hint):
        assert isinstance(hint, type)
        return _build(hint, value, key, errors)
    if origin is typing.Literal:
        if isinstance(given, str):
            for choice in args:
                if given.lower() == str(choice).lower():
                    return choice
        choices = ", ".join(repr(c) for c in args)
        errors.add(key, f"must be one of {choices} (got {_describe(value)})")
        return _INVALID
    if hint is bool:
        if text is not None:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        elif isinstance(value, bool):
            return value
        errors.add(key, f"must be true or false (got {_describe(value)})")
        return _INVALID
    if hint is int:
        if text is not None:
            try:
                return int(text)
            except ValueError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            return value
        errors.add(key, f"must be an integer (got {_describe(value)})")
        return _INVALID
    if hint is float:
        number: float | None = None
        if text is not None:
            try:
                number = float(text)
            except ValueError:
                number = None
        elif isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        if number is None or not math.isfinite(number):
            errors.add(key, f"must be a number (got {_describe(value)})")
            return _INVALID
        return number
    if hint is str:
        if isinstance(given, str):
            return given
        errors.add(key, f"must be a string (got {_describe(value)})")
        return _INVALID
    if hint is Path:
        if isinstance(given, str) and given.strip():
            return Path(given)
        errors.add(key, f"must be a non-empty file path (got {_describe(value)})")
        return _INVALID
    if origin is tuple:
        items: list[Any]
        if text is not None:
            items = [
                _EnvText(part.strip(), value.variable)
                for part in text.split(",") if part.strip()
            ]
        elif isinstance(value, list):
            items = value
        else:
            errors.add(key, f"must be a list (got {_describe(value)})")
            return _INVALID
        converted = [_convert(args[0], item, f"{key}[{i}]", errors) for i, item in enumerate(items)]
        if any(c is _INVALID for c in converted):
            return _INVALID
        return tuple(converted)
    if hint == _RATE_LIMITS:
        return _rate_limits(value, key, errors)
    raise TypeError(f"{key}: unsupported setting type {hint!r}")  # a programming error


def _rate_limits(value: Any, key: str, errors: _Collector) -> Any:
    """Calls per minute by operation name, names matched case-insensitively."""
    if not isinstance(value, dict):
        errors.add(key, f"must be a table of operation = calls per minute (got "
                        f"{_describe(value)}); from the environment set one variable per "
                        f"operation, e.g. {ENV_PREFIX}HUBJECT__RATE_LIMITS__PUSHEVSESTATUS")
        return _INVALID
    by_lower = {name.lower(): name for name in OPERATIONS}
    limits: dict[str, int] = {}
    ok = True
    for given, raw_limit in value.items():
        item_key = f"{key}.{given}"
        name = by_lower.get(str(given).lower())
        if name is None:
            outbound = [n for n, op in OPERATIONS.items()
                        if op.direction is Direction.CPO_TO_HUBJECT]
            errors.add(item_key, "is not an OICP operation" + _suggest(str(given), outbound)
                       + f" (rate-limited operations: {', '.join(outbound)})")
            ok = False
            continue
        if OPERATIONS[name].direction is not Direction.CPO_TO_HUBJECT:
            errors.add(item_key, f"{name} is called by Hubject, not by the connector: "
                                 "it has no rate limit")
            ok = False
            continue
        limit = _convert(int, raw_limit, item_key, errors)
        if limit is _INVALID:
            ok = False
        elif limit <= 0:
            errors.add(item_key, f"must be a positive number of calls per minute (got {limit})")
            ok = False
        else:
            limits[name] = limit
    return limits if ok else _INVALID


def _check(config: Config, errors: _Collector, *, check_files: bool) -> None:
    """Rules on values whose types are right."""
    _durations(config, "", errors)
    hub = config.hubject
    if hub.operator_id and not patterns.matches("OperatorID", hub.operator_id):
        errors.add("hubject.operator_id", f"{hub.operator_id!r} does not match the OperatorID "
                                          "pattern (e.g. 'DE*ABC' or '+49*123')")
    _hubject_url(hub, errors)
    _pair(hub.client_cert, hub.client_key, "hubject.client_cert", "hubject.client_key", errors)
    retry = hub.retry
    if retry.attempts < 1:
        errors.add("hubject.retry.attempts", f"must be at least 1 (got {retry.attempts})")
    if retry.max_delay_seconds < retry.initial_delay_seconds:
        errors.add("hubject.retry.max_delay_seconds",
                   f"must not be below initial_delay_seconds ({retry.max_delay_seconds} < "
                   f"{retry.initial_delay_seconds})")

    bus = config.bus
    _url(bus.rabbitmq.url, "bus.rabbitmq.url", ("amqp", "amqps"), errors)
    if bus.rabbitmq.prefetch < 1:
        errors.add("bus.rabbitmq.prefetch", f"must be at least 1 (got {bus.rabbitmq.prefetch})")
    for name in ("exchange", "queue_prefix", "dead_letter_exchange"):
        if not getattr(bus.rabbitmq, name).strip():
            errors.add(f"bus.rabbitmq.{name}", "must not be empty")
    _port(bus.embedded.http_port, "bus.embedded.http_port", errors)
    _url(bus.embedded.webhook_url, "bus.embedded.webhook_url", ("http", "https"), errors)
    if not bus.retry_delays_seconds:
        errors.add("bus.retry_delays_seconds", "must list at least one delay")
    for i, delay in enumerate(bus.retry_delays_seconds):
        if delay < 0:
            errors.add(f"bus.retry_delays_seconds[{i}]", f"must not be negative (got {delay})")

    inbound = config.inbound
    _port(inbound.port, "inbound.port", errors)
    if inbound.path_prefix and not inbound.path_prefix.startswith("/"):
        errors.add("inbound.path_prefix", f"must start with '/' (got {inbound.path_prefix!r})")
    elif inbound.path_prefix.endswith("/"):
        errors.add("inbound.path_prefix", f"must not end with '/' (got {inbound.path_prefix!r})")
    _pair(inbound.tls_cert, inbound.tls_key, "inbound.tls_cert", "inbound.tls_key", errors)
    for i, network in enumerate(inbound.allow_ips):
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            errors.add(f"inbound.allow_ips[{i}]",
                       f"{network!r} is not an IP address or network (e.g. 10.0.0.0/8)")
    deadline = inbound.reply_deadline_seconds
    if not 0 < deadline < _HUBJECT_ANSWER_LIMIT_SECONDS:
        errors.add("inbound.reply_deadline_seconds",
                   f"must be above 0 and below Hubject's {_HUBJECT_ANSWER_LIMIT_SECONDS:g} s "
                   f"answer limit (got {deadline:g})")

    for i, sub in enumerate(hub.sub_operator_ids):
        if not patterns.matches("OperatorID", sub):
            errors.add(f"hubject.sub_operator_ids[{i}]",
                       f"{sub!r} does not match the OperatorID pattern (e.g. 'DE*ABD')")
    try:
        zoneinfo.ZoneInfo(hub.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors.add("hubject.time_zone",
                   f"{hub.time_zone!r} is not an IANA time zone (e.g. 'Europe/Berlin')")
    embedded = bus.embedded
    if embedded.max_dead_letters < 1:
        errors.add("bus.embedded.max_dead_letters",
                   f"must be at least 1 (got {embedded.max_dead_letters})")
    if bus.rabbitmq.delivery_limit < 1:
        errors.add("bus.rabbitmq.delivery_limit",
                   f"must be at least 1 (got {bus.rabbitmq.delivery_limit})")
    if inbound.timeout_status_code not in _INBOUND_REFUSAL_CODES:
        errors.add("inbound.timeout_status_code",
                   f"must be one of {', '.join(sorted(_INBOUND_REFUSAL_CODES))} "
                   f"(got {inbound.timeout_status_code!r})")
    if inbound.max_body_bytes < 1024:
        errors.add("inbound.max_body_bytes",
                   f"must be at least 1024 (got {inbound.max_body_bytes})")
    state = config.state
    if state.kind == "postgresql":
        _url(state.postgresql.dsn, "state.postgresql.dsn", ("postgresql", "postgres"), errors)
    if state.postgresql.pool_size < 1:
        errors.add("state.postgresql.pool_size",
                   f"must be at least 1 (got {state.postgresql.pool_size})")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", state.postgresql.schema):
        errors.add("state.postgresql.schema",
                   f"must be a lower-case SQL identifier (got {state.postgresql.schema!r})")
    flows = config.flows
    if flows.status_batch_size < 1:
        errors.add("flows.status_batch_size",
                   f"must be at least 1 (got {flows.status_batch_size})")
    if flows.cdr_retry_max_delay_seconds < flows.cdr_retry_initial_delay_seconds:
        errors.add("flows.cdr_retry_max_delay_seconds",
                   "must not be below cdr_retry_initial_delay_seconds")

    _port(config.ops.port, "ops.port", errors)
    if check_files:
        for key in FILE_SETTINGS:
            _readable(_value_at(config, key), key, errors)


def _value_at(config: Config, key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _durations(section: Any, prefix: str, errors: _Collector) -> None:
    """Every ``*_seconds`` number must be above 0, or at least 0 where 0 means "at once"."""
    for item in dataclasses.fields(section):
        key = f"{prefix}{item.name}"
        value = getattr(section, item.name)
        if dataclasses.is_dataclass(value):
            _durations(value, key + ".", errors)
        elif item.name.endswith("_seconds") and isinstance(value, int | float):
            if key in _ZERO_ALLOWED:
                if value < 0:
                    errors.add(key, f"must not be negative (got {value:g})")
            elif value <= 0:
                errors.add(key, f"must be above 0 (got {value:g})")


def _port(value: int, key: str, errors: _Collector) -> None:
    # 0 asks the OS for a free port (tests, the sandbox).
    if not 0 <= value <= 65535:
        errors.add(key, f"must be a port number from 0 to 65535 (got {value})")


def _pair(first: Path | None, second: Path | None, key1: str, key2: str,
          errors: _Collector) -> None:
    if first is not None and second is None:
        errors.add(key2, f"is missing: {key1} is set, and a certificate needs its key")
    elif second is not None and first is None:
        errors.add(key1, f"is missing: {key2} is set, and a key needs its certificate")


def _hubject_url(hub: HubjectConfig, errors: _Collector) -> None:
    # Hubject is reached over https with mutual TLS only; plain http only for a local test
    # proxy, by an explicit setting, and never in production.
    if hub.insecure_plaintext and hub.environment == "production":
        errors.add("hubject.insecure_plaintext", 'is refused with environment = "production": '
                                                 "calls to Hubject must use https")
    if hub.base_url is None:
        return
    scheme = urllib.parse.urlsplit(hub.base_url).scheme.lower()
    if scheme == "http" and not hub.insecure_plaintext:
        errors.add("hubject.base_url",
                   f"{_redact_url(hub.base_url)!r} is plain http: Hubject is called over "
                   "https with mutual TLS only (hubject.insecure_plaintext = true allows "
                   "http for a local test proxy, never in production)")
        return
    _url(hub.base_url, "hubject.base_url",
         ("https", "http") if hub.insecure_plaintext else ("https",), errors)


def _url(value: str | None, key: str, schemes: tuple[str, ...], errors: _Collector) -> None:
    if value is None:
        return
    wanted = " or ".join(f"{s}://" for s in schemes)
    try:
        parsed = urllib.parse.urlsplit(value)
        host = parsed.hostname
        port = parsed.port
    except ValueError as exc:
        # urllib refuses a bracket left open ("[::1") or a port that is no number.
        errors.add(key, f"is not a valid URL ({exc}; got {_redact_url(value)!r})")
        return
    if parsed.scheme.lower() not in schemes or not host:
        errors.add(key, f"must be a URL starting with {wanted}, with a host "
                        f"(got {_redact_url(value)!r})")
    elif port == 0:
        errors.add(key, f"has port 0: a port number from 1 to 65535 is needed "
                        f"(got {_redact_url(value)!r})")


def _readable(path: Path | None, key: str, errors: _Collector) -> None:
    if path is None:
        return
    if not path.exists():
        errors.add(key, f"file {path} does not exist")
    elif not path.is_file():
        errors.add(key, f"{path} is not a file")
    else:
        try:
            with path.open("rb") as file:
                file.read(1)
        except OSError as exc:
            errors.add(key, f"file {path} is not readable: {exc.strerror or exc}")


def _redact_url(url: str) -> str:
    """The URL with the password of its user information replaced."""
    try:
        parsed = urllib.parse.urlsplit(url)
        password = parsed.password
    except ValueError:
        # Unparseable, but its user information may still hold a password.
        return _USERINFO_PASSWORD.sub(rf"\g<1>{REDACTED}@", url)
    if password is None:
        return url
    userinfo, _, host = parsed.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urllib.parse.urlunsplit(parsed._replace(netloc=f"{user}:{REDACTED}@{host}"))


def redacted(config: Config) -> dict[str, Any]:
    """The effective configuration as plain data (str, int, float, list, dict, None).

    Paths of secret files and passwords inside URLs are replaced by ``<redacted>``, so the
    result can be printed or logged.
    """
    result = _plain(config, "")
    assert isinstance(result, dict)
    return result


def _plain(value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name), f"{key}.{f.name}" if key else f.name)
            for f in dataclasses.fields(value)
        }
    if value is not None and key in SECRET_PATHS:
        return REDACTED
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and "://" in value:
        return _redact_url(value)
    if isinstance(value, tuple | list):
        return [_plain(v, key) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{key}.{k}") for k, v in value.items()}
    return value
