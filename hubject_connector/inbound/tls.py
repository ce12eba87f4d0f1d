"""The TLS side of the server Hubject calls: our server certificate, Hubject's CA, rotation.

Hubject calls the CPO over HTTPS and presents its own client certificate (design.md,
"mTLS"). ``[inbound] client_cert_mode`` says how that certificate is checked:

* ``required``: the handshake fails without a client certificate that chains to
  ``client_ca`` (and is in date, for client authentication);
* ``optional``: a client without a certificate gets in; one that presents a certificate
  must present a valid one, or the handshake fails;
* ``off``: no client certificate is asked for: plain TLS (``tls_cert`` set) or plain HTTP
  behind a TLS-terminating proxy. With ``client_cert_header`` the proxy passes the client
  certificate it verified, URL-encoded PEM (nginx's ``$ssl_client_escaped_cert``), and it
  is verified again here against ``client_ca``: :class:`HeaderCertificates`.

``ServerTls`` keeps the context current as ``hubject.tls.ClientTls`` does for the client
side: the files are fingerprinted (SHA-256 of their contents) at most every
``cert_reload_interval_seconds`` and a changed set is loaded into a *new* context. The
server hands each new connection the context in force at its handshake, so new
connections get the new certificate while established ones keep theirs; nothing restarts.
A half-rotated set (new certificate, old key) fails to load: the previous context stays
and the files are tried again at the next check.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from hubject_connector import certfiles, certs
from hubject_connector.certfiles import EXPIRY_WARNING_DAYS as EXPIRY_WARNING_DAYS
from hubject_connector.certfiles import WallClock as WallClock
from hubject_connector.certs import CertificateError, CertificateInfo
from hubject_connector.config import InboundConfig
from hubject_connector.errors import ConfigError, ConnectorError
from hubject_connector.inbound.metrics import InboundMetrics

#: Longest header value taken as a certificate chain (a chain is a few kilobytes).
MAX_HEADER_CERTIFICATE_BYTES: Final = 64 * 1024

_log = structlog.get_logger(__name__)


def check_settings(config: InboundConfig) -> None:
    """Raise ``ConfigError`` naming the setting when the TLS settings do not fit together."""
    mode = config.client_cert_mode
    if mode != "off":
        if config.tls_cert is None:
            raise ConfigError(
                "inbound.tls_cert",
                f"is required with client_cert_mode = {mode!r}: Hubject calls over HTTPS "
                "(behind a TLS-terminating proxy, set client_cert_mode = 'off')",
            )
        if config.client_ca is None:
            raise ConfigError(
                "inbound.client_ca",
                f"is required with client_cert_mode = {mode!r}: the CA bundle that issued "
                "Hubject's client certificate",
            )
    elif config.client_cert_header and config.client_ca is None:
        raise ConfigError(
            "inbound.client_ca",
            "is required with client_cert_header: the certificate the proxy passes is "
            "verified against it",
        )


def build_server_context(config: InboundConfig) -> tuple[ssl.SSLContext, x509.Certificate]:
    """An ``SSLContext`` serving ``tls_cert``/``tls_key`` and checking clients by the mode.

    Returns the context and our server certificate. Raises ``CertificateError`` (a
    ``ConfigError``) naming the setting and the file that cannot be used.
    """
    if config.tls_cert is None or config.tls_key is None:
        raise ConfigError("inbound.tls_cert", "is required for TLS (with inbound.tls_key)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        chain = certs.load_certificates(config.tls_cert)
    except CertificateError as exc:
        raise exc.for_setting("inbound.tls_cert") from exc
    try:
        # Loaded here first: cryptography never prompts for a pass phrase, OpenSSL would.
        key = certs.load_private_key(config.tls_key)
    except CertificateError as exc:
        raise exc.for_setting("inbound.tls_key") from exc
    if _public(key.public_key()) != _public(chain[0].public_key()):
        raise CertificateError(
            config.tls_key, f"this key does not belong to the certificate {config.tls_cert}",
            key="inbound.tls_key",
        )
    try:
        context.load_cert_chain(certfile=str(config.tls_cert), keyfile=str(config.tls_key))
    except ssl.SSLError as exc:
        raise CertificateError(config.tls_cert, f"cannot use certificate and key: "
                                                f"{certfiles.ssl_reason(exc)}",
                               key="inbound.tls_cert") from exc
    if config.client_cert_mode == "off":
        context.verify_mode = ssl.CERT_NONE
        return context, chain[0]
    if config.client_ca is None:
        raise ConfigError("inbound.client_ca", "is required to check client certificates")
    try:
        certs.load_certificates(config.client_ca)
        context.load_verify_locations(cafile=str(config.client_ca))
    except CertificateError as exc:
        raise exc.for_setting("inbound.client_ca") from exc
    except ssl.SSLError as exc:
        raise CertificateError(config.client_ca, f"cannot load the CA bundle: "
                                                 f"{certfiles.ssl_reason(exc)}",
                               key="inbound.client_ca") from exc
    # The bundle may hold an intermediate of Hubject's chain rather than its root: every
    # certificate in it is an anchor, as the operator configured.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.verify_mode = (
        ssl.CERT_REQUIRED if config.client_cert_mode == "required" else ssl.CERT_OPTIONAL
    )
    return context, chain[0]


def _public(key: object) -> bytes:
    assert hasattr(key, "public_bytes")
    data: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


def _fingerprint(config: InboundConfig) -> bytes:
    """SHA-256 over the contents of every configured file (missing files count too)."""
    return certfiles.fingerprint((config.tls_cert, config.tls_key, config.client_ca))


class HeaderCertificateError(ConnectorError):
    """The client certificate a proxy passed in a header is missing, unreadable or untrusted.

    ``reason`` is the metric label (``client_certificate_header_missing`` or
    ``client_certificate_header_invalid``); ``str()`` says what is wrong.
    """

    def __init__(self, header: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.header = header
        self.reason = reason


class HeaderCertificates:
    """Verifies the client certificate a TLS-terminating proxy passes in a header.

    The header holds the URL-encoded PEM of the client certificate, optionally followed by
    its intermediates; it must chain to one of ``anchors`` (``client_ca``), be in date and
    be meant for client authentication, as the TLS handshake would require.
    """

    def __init__(self, header: str, anchors: Sequence[x509.Certificate],
                 now: WallClock = certfiles.utcnow) -> None:
        self.header = header
        self._store = Store(list(anchors))
        self._now = now
        # Web PKI rules, except that a client certificate needs no subjectAltName:
        # Hubject's carries its name in the subject only.
        self._ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
            x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
        )

    def verify(self, value: str | None) -> x509.Certificate:
        """The verified leaf certificate of a header ``value``.

        Raises ``HeaderCertificateError`` saying what is wrong.
        """
        if not value:
            raise HeaderCertificateError(
                self.header, "client_certificate_header_missing",
                f"no client certificate in the {self.header} header",
            )
        if len(value) > MAX_HEADER_CERTIFICATE_BYTES:
            raise HeaderCertificateError(
                self.header, "client_certificate_header_invalid",
                f"the {self.header} header is longer than {MAX_HEADER_CERTIFICATE_BYTES} bytes",
            )
        pem = urllib.parse.unquote(value.strip().strip('"')).encode("utf-8", "replace")
        try:
            chain = x509.load_pem_x509_certificates(pem)
        except ValueError as exc:
            raise HeaderCertificateError(
                self.header, "client_certificate_header_invalid",
                f"the {self.header} header holds no URL-encoded PEM certificate: {exc}",
            ) from exc
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(self._now())
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                                ee_policy=self._ee_policy)
            .build_client_verifier()
        )
        try:
            verifier.verify(chain[0], chain[1:])
        except VerificationError as exc:
            raise HeaderCertificateError(
                self.header, "client_certificate_header_invalid",
                f"the client certificate in the {self.header} header is not trusted: {exc}",
            ) from exc
        return chain[0]


@dataclass(frozen=True, slots=True)
class LoadedServerTls:
    """One loaded set of files: the context, what it presents, what it trusts."""

    context: ssl.SSLContext | None
    fingerprint: bytes
    #: Our server certificate, ``None`` without TLS.
    certificate: CertificateInfo | None
    #: The proxy header's verifier (client_cert_mode "off" with client_cert_header).
    header: HeaderCertificates | None
    loaded_at: dt.datetime


class ServerTls:
    """The TLS context in force for new connections, reloaded when its files change.

    Creating it checks the settings and loads the files at once: a ``ConfigError`` (a
    ``CertificateError`` for a file, naming the setting and the path) makes the service fail
    fast. ``enabled`` is false for plain HTTP (client_cert_mode "off" without tls_cert).
    """

    def __init__(
        self,
        config: InboundConfig,
        *,
        metrics: InboundMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: WallClock = certfiles.utcnow,
    ) -> None:
        check_settings(config)
        self._config = config
        self._metrics = metrics
        self._clock = clock
        self._now = now
        self._expiry = certfiles.ExpiryWarnings("server", _log, now)
        self._failed_fingerprint: bytes | None = None
        self._loaded = self._load(_fingerprint(config))
        self._checked_at = clock()
        self._announce(self._loaded, first=True)

    @property
    def enabled(self) -> bool:
        """Whether connections are TLS (false: plain HTTP behind a proxy)."""
        return self._config.tls_cert is not None

    @property
    def loaded(self) -> LoadedServerTls:
        """The set of files in force (without checking for changes)."""
        return self._loaded

    @property
    def certificate(self) -> CertificateInfo | None:
        """Our server certificate in force, ``None`` without TLS."""
        return self._loaded.certificate

    @property
    def header(self) -> HeaderCertificates | None:
        """The verifier of the proxy's client certificate header, if one is configured."""
        return self._loaded.header

    def context(self) -> ssl.SSLContext:
        """The context for the next connection, after a check for rotated files if due."""
        if self._clock() - self._checked_at >= self._config.cert_reload_interval_seconds:
            self.check()
        context = self._loaded.context
        if context is None:
            raise ConfigError("inbound.tls_cert", "TLS is not configured")
        return context

    def problem(self) -> str | None:
        """Why the server is not ready to serve Hubject (readiness), or ``None``."""
        info = self._loaded.certificate
        if info is None:
            return None
        now = self._now()
        if now >= info.not_after:
            return (f"the server certificate {info.path} expired at "
                    f"{info.not_after.isoformat()}")
        if now < info.not_before:
            return (f"the server certificate {info.path} is not valid before "
                    f"{info.not_before.isoformat()}")
        return None

    def check(self) -> bool:
        """Reload now if the files changed; return whether a new set is in force.

        A set that fails to load is logged (once) and counted; the previous one stays.
        """
        self._checked_at = self._clock()
        fingerprint = _fingerprint(self._config)
        if fingerprint == self._loaded.fingerprint:
            self._warn_expiry(self._loaded)
            return False
        try:
            loaded = self._load(fingerprint)
            if _fingerprint(self._config) != fingerprint:
                # The files changed while they were read: what was loaded may mix two
                # sets. Keep the previous one; the next check loads the settled files.
                return False
        except ConfigError as exc:
            if fingerprint != self._failed_fingerprint:
                self._failed_fingerprint = fingerprint
                _log.error("server certificate files changed but cannot be loaded; "
                           "keeping the previous certificate", error=str(exc))
            if self._metrics is not None:
                self._metrics.server_cert_reloads.labels(result="error").inc()
            return False
        self._failed_fingerprint = None
        self._loaded = loaded
        if self._metrics is not None:
            self._metrics.server_cert_reloads.labels(result="ok").inc()
        self._announce(loaded, first=False)
        return True

    async def watch(self, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        """Check the files every ``cert_reload_interval_seconds`` until cancelled.

        New connections check when due anyway; this keeps the expiry gauge, the warnings
        and the proxy header's CA current while nobody connects (run it as a task).
        """
        await certfiles.watch(self.check, self._config.cert_reload_interval_seconds,
                              role="server", log=_log, sleep=sleep)

    def _load(self, fingerprint: bytes) -> LoadedServerTls:
        config = self._config
        context: ssl.SSLContext | None = None
        info: CertificateInfo | None = None
        if config.tls_cert is not None:
            context, cert = build_server_context(config)
            info = certs.describe_certificate(cert, config.tls_cert, now=self._now())
        header = None
        if config.client_cert_mode == "off" and config.client_cert_header:
            assert config.client_ca is not None  # check_settings
            try:
                anchors = certs.load_certificates(config.client_ca)
            except CertificateError as exc:
                raise exc.for_setting("inbound.client_ca") from exc
            header = HeaderCertificates(config.client_cert_header, anchors, now=self._now)
        return LoadedServerTls(context, fingerprint, info, header, self._now())

    def _announce(self, loaded: LoadedServerTls, *, first: bool) -> None:
        info = loaded.certificate
        if info is None:
            _log.info("inbound server without TLS (client_cert_mode 'off', no tls_cert): "
                      "it must sit behind a TLS-terminating proxy")
        else:
            _log.info("server certificate loaded" if first else "server certificate reloaded",
                      subject=info.subject, issuer=info.issuer,
                      not_after=info.not_after.isoformat(), days_left=info.days_left,
                      file=str(info.path), client_cert_mode=self._config.client_cert_mode)
        if self._metrics is not None:
            self._metrics.server_cert_not_after.set(
                info.not_after.timestamp() if info is not None else 0
            )
        self._warn_expiry(loaded)

    def _warn_expiry(self, loaded: LoadedServerTls) -> None:
        self._expiry.check(loaded.certificate, loaded.fingerprint)


def refusal_reason(exc: BaseException) -> str:
    """The metric label of a failed handshake: why the client was refused."""
    if isinstance(exc, TimeoutError):
        return "handshake_timeout"
    if not isinstance(exc, ssl.SSLError):
        # The client went away mid-handshake (a TCP health check, a port scan).
        return "closed_during_handshake" if isinstance(exc, OSError) else "tls_handshake_failed"
    reason = certfiles.ssl_reason(exc)
    if "HTTP_REQUEST" in reason:
        return "not_tls"
    if "PEER_DID_NOT_RETURN_A_CERTIFICATE" in reason:
        return "no_client_certificate"
    if "CERTIFICATE_VERIFY_FAILED" in reason or "UNKNOWN_CA" in reason:
        return "untrusted_client_certificate"
    return "tls_handshake_failed"


def describe_refusal(exc: BaseException) -> str:
    """The failed handshake in words, for the log."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or certfiles.ssl_reason(exc)
    if isinstance(exc, ssl.SSLError):
        return certfiles.ssl_reason(exc)
    if isinstance(exc, TimeoutError):
        return "the client did not finish the TLS handshake in time"
    return repr(exc)

