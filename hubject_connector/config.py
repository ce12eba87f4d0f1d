"""Configuration: one TOML file plus HUBJECT_CONNECTOR_* environment overrides.

The sections below are the single description of every setting. Secrets (private keys,
passwords) are never values here, only paths to files that hold them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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


@dataclass(frozen=True, slots=True)
class EmbeddedBusConfig:
    """The embedded bus: a durable SQLite queue and an HTTP API for the backend."""

    path: Path = Path("var/bus.sqlite3")
    http_host: str = "127.0.0.1"
    http_port: int = 8090
    #: Where commands for the backend are POSTed; the response body is the reply.
    webhook_url: str | None = None


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


@dataclass(frozen=True, slots=True)
class OpsConfig:
    """The operations HTTP server: /metrics, /healthz, /readyz."""

    host: str = "127.0.0.1"
    port: int = 9090


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """Log output."""

    format: Literal["json", "console"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration."""

    hubject: HubjectConfig = field(default_factory=HubjectConfig)
    bus: BusConfig = field(default_factory=BusConfig)
    inbound: InboundConfig = field(default_factory=InboundConfig)
    ops: OpsConfig = field(default_factory=OpsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
