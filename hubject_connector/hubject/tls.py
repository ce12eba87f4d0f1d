"""The TLS side of talking to Hubject: our client certificate, Hubject's CA, rotation.

Hubject authenticates the CPO by its client certificate (mutual TLS) and presents a
server certificate chaining to its own CA, which must be trusted explicitly
(design.md, "mTLS"). So the context built here:

* verifies the server always (``CERT_REQUIRED``, host name checked), trusting **only**
  the configured CA bundle: the system store is never loaded;
* speaks TLS 1.2 or newer;
* presents the configured client certificate (plus its chain) and key.

``ClientTls`` keeps the context current: Kubernetes swaps the files of a rotated secret
in place, so the files are fingerprinted (SHA-256 of their contents) at most every
``cert_reload_interval_seconds``, checked before a request, and a changed set is loaded
into a *new* context. aiohttp keys pooled connections by their SSL context, so new
requests open connections with the new certificate while the old ones drain; nothing is
restarted. A half-rotated set (new certificate, old key) fails to load: the old context
stays in force and the files are tried again at the next check. A set that loads but
that Hubject would refuse (expired, not valid yet, another OperatorID) does not replace a
good one either.

No certificate, or an expired one, is refused at start and before each request: Hubject
would refuse the handshake anyway, and saying so locally names the file to fix instead of
a connection error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography import x509

from hubject_connector import certfiles, certs
from hubject_connector.certfiles import EXPIRY_WARNING_DAYS as EXPIRY_WARNING_DAYS
from hubject_connector.certfiles import WallClock as WallClock
from hubject_connector.certs import CertificateError, CertificateInfo
from hubject_connector.config import ConfigErrors, HubjectConfig
from hubject_connector.errors import ConfigError
from hubject_connector.metrics import HubjectMetrics

_log = structlog.get_logger(__name__)


def build_client_context(config: HubjectConfig) -> tuple[ssl.SSLContext, x509.Certificate | None]:
    """An ``SSLContext`` for calls to Hubject from the configured PEM files.

    Returns the context and our client certificate (``None`` when none is configured).
    Raises ``CertificateError`` (a ``ConfigError``) naming the setting and the file that
    could not be used, or ``ConfigError`` when no CA bundle is configured; several
    problems at once (a missing CA bundle *and* an unreadable key) are raised together as
    ``ConfigErrors``, so that one run shows everything to fix.
    """
    problems: list[ConfigError] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # PROTOCOL_TLS_CLIENT already sets these; stated so that no edit can weaken them.
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    # The bundle may hold an intermediate of Hubject's chain rather than its root: every
    # certificate in it is an anchor, as the operator configured.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN

    if config.ca_bundle is None:
        problems.append(ConfigError(
            "hubject.ca_bundle",
            "is required: Hubject's server certificate chains to Hubject's own CA, which is "
            "trusted explicitly (the system store is never used)",
        ))
    else:
        try:
            certs.load_certificates(config.ca_bundle)
            context.load_verify_locations(cafile=str(config.ca_bundle))
        except CertificateError as exc:
            problems.append(exc.for_setting("hubject.ca_bundle"))
        except ssl.SSLError as exc:
            problems.append(CertificateError(
                config.ca_bundle, f"cannot load the CA bundle: {certfiles.ssl_reason(exc)}",
                key="hubject.ca_bundle"))

    chain: list[x509.Certificate] = []
    key_path = config.client_key or config.client_cert
    key_setting = "hubject.client_key" if config.client_key else "hubject.client_cert"
    if config.client_cert is not None:
        try:
            chain = certs.load_certificates(config.client_cert)
        except CertificateError as exc:
            problems.append(exc.for_setting("hubject.client_cert"))
    if key_path is not None and (chain or config.client_key is not None):
        try:
            # Loaded here first: cryptography never prompts for a pass phrase, whereas
            # OpenSSL would ask on the terminal for an encrypted key.
            certs.load_private_key(key_path)
        except CertificateError as exc:
            problems.append(exc.for_setting(key_setting))
    extra: list[x509.Certificate] = []
    if config.client_chain is not None:
        try:
            extra = certs.load_certificates(config.client_chain)
        except CertificateError as exc:
            problems.append(exc.for_setting("hubject.client_chain"))
    if problems:
        raise problems[0] if len(problems) == 1 else ConfigErrors(problems)
    if config.client_cert is None or key_path is None:
        return context, None
    _load_chain(context, [*chain, *extra], key_path, key_setting, config.client_cert)
    return context, chain[0]


def _load_chain(
    context: ssl.SSLContext,
    chain: list[x509.Certificate],
    key_path: Path,
    key_setting: str,
    cert_path: Path,
) -> None:
    # ssl loads a chain only from a file: write certificate + chain (public data) to a
    # private temporary file, load it, remove it.
    with tempfile.TemporaryDirectory(prefix="hubject-connector-") as directory:
        combined = Path(directory) / "client-chain.pem"
        combined.write_bytes(b"".join(certs.cert_pem(c) for c in chain))
        try:
            context.load_cert_chain(certfile=str(combined), keyfile=str(key_path))
        except ssl.SSLError as exc:
            reason = certfiles.ssl_reason(exc)
            if "KEY_VALUES_MISMATCH" in reason:
                raise CertificateError(
                    key_path, f"this key does not belong to the certificate {cert_path}",
                    key=key_setting,
                ) from exc
            raise CertificateError(cert_path, f"cannot use certificate and key: {reason}",
                                   key="hubject.client_cert") from exc


def _fingerprint(config: HubjectConfig) -> bytes:
    """SHA-256 over the contents of every configured file (missing files count too)."""
    return certfiles.fingerprint(
        (config.client_cert, config.client_key, config.client_chain, config.ca_bundle)
    )


@dataclass(frozen=True, slots=True)
class LoadedTls:
    """One loaded set of files: the context and what it presents."""

    context: ssl.SSLContext
    fingerprint: bytes
    #: Our client certificate, ``None`` when none is configured.
    certificate: CertificateInfo | None
    loaded_at: dt.datetime
    #: Whether the certificate names the configured OperatorID (true when either is unset).
    carries_operator_id: bool = True


@dataclass(frozen=True, slots=True)
class Rejection:
    """Our best explanation of why Hubject refused the TLS session."""

    expired: bool
    message: str


class ClientTls:
    """The TLS context in force for calls to Hubject, reloaded when its files change.

    Create it at start: it loads the files at once and raises ``CertificateError`` (a
    ``ConfigError``, naming the setting and the file) when they cannot be used, when no
    client certificate is configured, or when the certificate has expired or is not valid
    yet: Hubject would refuse the connection, so none is attempted. Then ``context()``
    before each request returns the current context, reloading first when the files
    changed.

    A rotated set replaces the one in force only if it is fit to present: a new
    certificate that has expired, is not valid yet or names another OperatorID is refused
    while the current one is good (logged once per set, counted in
    ``client_certificate_reloads_total{result="refused"}``).
    """

    def __init__(
        self,
        config: HubjectConfig,
        *,
        metrics: HubjectMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: WallClock = certfiles.utcnow,
    ) -> None:
        self._config = config
        self._metrics = metrics
        self._clock = clock
        self._now = now
        self._expiry = certfiles.ExpiryWarnings("client", _log, now)
        self._loaded = self._load(_fingerprint(config))
        self._refuse_at_start(self._loaded)
        self._checked_at = clock()
        self._failed_fingerprint: bytes | None = None
        self._announce(self._loaded, first=True)

    @property
    def loaded(self) -> LoadedTls:
        """The set of files in force (without checking for changes)."""
        return self._loaded

    @property
    def certificate(self) -> CertificateInfo | None:
        """Our client certificate in force, ``None`` when none is configured."""
        return self._loaded.certificate

    def context(self) -> ssl.SSLContext:
        """The context for the next request, after a check for rotated files if due."""
        interval = self._config.cert_reload_interval_seconds
        if self._clock() - self._checked_at >= interval:
            self.check()
        return self._loaded.context

    def unusable(self) -> str | None:
        """Why the certificate in force cannot be presented now (expired, not valid yet,
        none), or ``None`` when it can. Callers refuse to connect rather than be refused."""
        return self._unfit(self._loaded, check_operator=False)

    def check(self) -> bool:
        """Reload now if the files changed; return whether a new context is in force.

        A set that fails to load, or a certificate unfit to replace a good one, is logged
        and counted; the previous context stays.
        """
        self._checked_at = self._clock()
        fingerprint = _fingerprint(self._config)
        if fingerprint == self._loaded.fingerprint:
            self._warn_expiry(self._loaded)
            return False
        try:
            loaded = self._load(fingerprint)
        except ConfigError as exc:
            self._keep_current(fingerprint, "error",
                               "client certificate files changed but cannot be loaded; "
                               "keeping the previous certificate", error=str(exc))
            return False
        refusal = self._unfit(loaded, check_operator=True)
        if refusal is not None and self._unfit(self._loaded, check_operator=True) is None:
            # Rotation must never trade a working certificate for one Hubject refuses.
            self._keep_current(
                fingerprint, "refused",
                "rotated client certificate refused; keeping the current one",
                reason=refusal,
                file=str(self._config.client_cert),
                current_not_after=(self._loaded.certificate.not_after.isoformat()
                                   if self._loaded.certificate else None),
            )
            return False
        self._failed_fingerprint = None
        self._loaded = loaded
        if self._metrics is not None:
            self._metrics.client_cert_reloads.labels(result="ok").inc()
        self._announce(loaded, first=False)
        return True

    def _keep_current(self, fingerprint: bytes, result: str, message: str,
                      **details: object) -> None:
        if fingerprint != self._failed_fingerprint:
            # Logged once per set, not at every check.
            self._failed_fingerprint = fingerprint
            _log.error(message, **details)
        if self._metrics is not None:
            self._metrics.client_cert_reloads.labels(result=result).inc()

    async def watch(self, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        """Check the files every ``cert_reload_interval_seconds`` until cancelled.

        Requests check before they go out anyway; this keeps the expiry gauge, the expiry
        warnings and the rotation current while no request is sent (run it as a task).
        """
        await certfiles.watch(self.check, self._config.cert_reload_interval_seconds,
                              role="client", log=_log, sleep=sleep)

    def _load(self, fingerprint: bytes) -> LoadedTls:
        context, cert = build_client_context(self._config)
        info = None
        if cert is not None and self._config.client_cert is not None:
            info = certs.describe_certificate(cert, self._config.client_cert, now=self._now())
        carries = bool(
            cert is None
            or not self._config.operator_id
            or certs.subject_carries_operator_id(cert, self._config.operator_id)
        )
        return LoadedTls(context, fingerprint, info, self._now(), carries)

    def _unfit(self, loaded: LoadedTls, *, check_operator: bool) -> str | None:
        """Why ``loaded`` must not be presented to Hubject, or ``None``."""
        info = loaded.certificate
        if info is None:
            return ("no client certificate is configured: Hubject refuses connections "
                    "without one (set hubject.client_cert to the certificate Hubject issued)")
        now = self._now()
        if now >= info.not_after:
            return (f"the certificate expired at {info.not_after.isoformat()}: Hubject "
                    "refuses it; install the renewed certificate")
        if now < info.not_before:
            return (f"the certificate is not valid before {info.not_before.isoformat()}: "
                    "Hubject refuses it until then (check the clock)")
        if check_operator and not loaded.carries_operator_id:
            return (f"the certificate's subject ({info.subject}) does not carry the "
                    f"OperatorID {self._config.operator_id}: Hubject answers 017 to it")
        return None

    def _refuse_at_start(self, loaded: LoadedTls) -> None:
        reason = self._unfit(loaded, check_operator=False)
        if reason is None:
            return
        if loaded.certificate is None:
            raise ConfigError("hubject.client_cert", reason)
        raise CertificateError(loaded.certificate.path, reason, key="hubject.client_cert")

    def _announce(self, loaded: LoadedTls, *, first: bool) -> None:
        info = loaded.certificate
        if info is None:
            _log.warning("no client certificate configured (hubject.client_cert): Hubject "
                         "refuses connections without one")
        else:
            _log.info("client certificate loaded" if first else "client certificate reloaded",
                      subject=info.subject, issuer=info.issuer,
                      not_after=info.not_after.isoformat(), days_left=info.days_left,
                      file=str(info.path))
            if not loaded.carries_operator_id:
                _log.warning(
                    "the client certificate's subject does not carry the OperatorID: "
                    "Hubject will answer 017 (unauthorized)",
                    operator_id=self._config.operator_id, subject=info.subject,
                    file=str(info.path),
                )
        if self._metrics is not None:
            if info is not None:
                self._metrics.client_cert_not_after.set(info.not_after.timestamp())
            else:
                self._metrics.client_cert_not_after.set(0)
        self._warn_expiry(loaded)

    def _warn_expiry(self, loaded: LoadedTls) -> None:
        self._expiry.check(loaded.certificate, loaded.fingerprint)

    def explain_rejection(self) -> Rejection:
        """Why Hubject most likely refused our TLS session, from what we know locally."""
        info = self._loaded.certificate
        if info is None:
            return Rejection(False, "no client certificate is configured (hubject.client_cert) "
                                    "and the server requires one")
        now = self._now()
        if now >= info.not_after:
            return Rejection(True, f"our client certificate {info.path} expired at "
                                   f"{info.not_after.isoformat()}")
        if now < info.not_before:
            return Rejection(True, f"our client certificate {info.path} is not valid before "
                                   f"{info.not_before.isoformat()} (check the clock)")
        return Rejection(False, f"the server refused our client certificate {info.path} "
                                f"(subject {info.subject}, issuer {info.issuer}): it is "
                                "probably not issued by a CA the server trusts")

    def describe_server_failure(self, verify_message: str) -> str:
        """A sentence for a server certificate that failed verification."""
        text = verify_message or "verification failed"
        bundle = self._config.ca_bundle
        if "expired" in text:
            return f"the server's certificate has expired ({text})"
        if "hostname" in text.lower() or "ip address mismatch" in text.lower():
            return f"the server's certificate does not match the host ({text})"
        return (f"the server's certificate is not trusted: {text}; it must chain to the "
                f"configured CA bundle {bundle}")
