"""Certificates: a throwaway development PKI, CSRs for Hubject onboarding, inspection.

Hubject issues the CPO's client certificate from a CSR the CPO sends; the certificate's
subject carries the OperatorID, and Hubject answers 017 (unauthorized) when the
certificate and the OperatorID of a request do not match. Here the OperatorID goes into
the subject's **CN** (common name), as in Hubject's onboarding instructions; the
organisational unit (OU) is accepted as well when checking a certificate
(``subject_carries_operator_id``), since some issued certificates put it there.

The development PKI (``make_dev_pki``) is for tests, the simulator and the sandbox only:
its keys are unprotected files, its CA is trusted by nothing else.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hubject_connector.errors import ConfigError

KeyType = Literal["rsa", "ec"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
Usage = Literal["ca", "server", "client"]

#: Permissions of every private key file written here: owner read/write only.
KEY_FILE_MODE: Final = 0o600
DEFAULT_RSA_BITS: Final = 2048


class CertificateError(ConfigError):
    """A certificate or key file is missing, unreadable or not what it should be.

    ``path`` names the file; ``key`` is the setting that points at it (e.g.
    ``hubject.client_cert``) when known, else the path.
    """

    def __init__(self, path: Path | None, message: str, *, key: str | None = None) -> None:
        if key is not None:
            super().__init__(key, f"{path}: {message}" if path is not None else message)
        else:
            super().__init__(str(path) if path is not None else "certificate", message)
        self.path = path
        self.reason = message

    def for_setting(self, key: str) -> CertificateError:
        """The same error, attributed to the setting ``key``."""
        return CertificateError(self.path, self.reason, key=key)


@dataclass(frozen=True, slots=True)
class DevPki:
    """Paths of a development PKI written by ``make_dev_pki`` (all PEM files)."""

    directory: Path
    operator_id: str
    #: The throwaway CA that signs the server and both client certificates.
    ca_cert: Path
    ca_key: Path
    #: Server certificate for ``localhost`` and ``127.0.0.1`` (the simulator, the inbound server).
    server_cert: Path
    server_key: Path
    #: What Hubject presents when it calls the CPO (the simulator acting as EMP/Hubject).
    hubject_client_cert: Path
    hubject_client_key: Path
    #: The CPO's client certificate: CN is the OperatorID.
    cpo_client_cert: Path
    cpo_client_key: Path
    #: The same subject as ``cpo_client_cert`` but already expired.
    expired_client_cert: Path
    expired_client_key: Path
    #: A second CA unrelated to the first, with a client and a server certificate of its own.
    other_ca_cert: Path
    other_ca_key: Path
    other_client_cert: Path
    other_client_key: Path
    other_server_cert: Path
    other_server_key: Path


# --------------------------------------------------------------------------------------
# Keys and files
# --------------------------------------------------------------------------------------


def new_key(key_type: KeyType = "ec", *, rsa_bits: int = DEFAULT_RSA_BITS) -> PrivateKey:
    """A fresh private key: EC P-256 (fast, the dev PKI's choice) or RSA."""
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key type {key_type!r}: use 'rsa' or 'ec'")


def key_pem(key: PrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    """The certificate as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only (0600), also when it existed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, KEY_FILE_MODE)
    try:
        # The mode given to open() only applies to new files; an old file keeps its own.
        os.fchmod(fd, KEY_FILE_MODE)
        os.write(fd, data)
    finally:
        os.close(fd)


def write_public(path: Path, data: bytes) -> None:
    """Write a certificate or CSR file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file. Raises ``CertificateError`` naming the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateError(path, f"cannot read certificate: {exc.strerror or exc}") from exc
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateError(path, f"not a PEM certificate: {exc}") from exc
    if not certs:
        raise CertificateError(path, "contains no certificate")
    return certs


def load_certificate(path: Path) -> x509.Certificate:
    """The first certificate in a PEM file. Raises ``CertificateError`` naming the file."""
    return load_certificates(path)[0]


def load_private_key(path: Path) -> PrivateKey:
    """An unencrypted PEM private key. Raises ``CertificateError`` naming the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateError(path, f"cannot read private key: {exc.strerror or exc}") from exc
    return load_private_key_bytes(data, path)


def load_private_key_bytes(data: bytes, path: Path | None = None) -> PrivateKey:
    """An unencrypted PEM private key (RSA or EC) from bytes; ``path`` names it in errors.

    An encrypted key is refused rather than prompted for: the service runs unattended.
    """
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        # The message of cryptography never quotes the key material.
        raise CertificateError(path, f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CertificateError(path, f"unsupported key type {type(key).__name__}")
    return key


# --------------------------------------------------------------------------------------
# Issuing
# --------------------------------------------------------------------------------------


def name(
    common_name: str,
    *,
    organisation: str | None = None,
    organisational_unit: str | None = None,
    country: str | None = None,
) -> x509.Name:
    """An X.509 name from its usual parts (only those given)."""
    attributes = []
    if country:
        attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    if organisation:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    if organisational_unit:
        attributes.append(
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organisational_unit)
        )
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _general_names(sans: Sequence[str]) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for san in sans:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            result.append(x509.DNSName(san))
    return result


def issue_certificate(
    subject: x509.Name,
    key: PrivateKey,
    *,
    usage: Usage,
    issuer_cert: x509.Certificate | None = None,
    issuer_key: PrivateKey | None = None,
    sans: Sequence[str] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    valid_days: float = 365,
) -> x509.Certificate:
    """Sign a certificate for ``key``.

    Without ``issuer_cert``/``issuer_key`` the certificate is self-signed (a root CA).
    ``usage`` sets the basic constraints and extended key usage: "ca", "server" or
    "client". ``sans`` are DNS names or IP addresses. Validity runs from ``not_before``
    (default: an hour ago, tolerating clock skew) to ``not_after`` (default:
    ``valid_days`` later); both may lie in the past, for expired certificates in tests.
    """
    if (issuer_cert is None) != (issuer_key is None):
        raise ValueError("issuer_cert and issuer_key go together")
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    end = not_after or start + dt.timedelta(days=valid_days)
    signer: PrivateKey = issuer_key if issuer_key is not None else key
    issuer = issuer_cert.subject if issuer_cert is not None else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    if usage == "ca":
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        ).add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    else:
        purpose = (
            ExtendedKeyUsageOID.SERVER_AUTH if usage == "server"
            else ExtendedKeyUsageOID.CLIENT_AUTH
        )
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        ).add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(_general_names(sans)), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


def write_pair(
    directory: Path, stem: str, cert: x509.Certificate, key: PrivateKey
) -> tuple[Path, Path]:
    """Write ``stem.pem`` (certificate) and ``stem.key`` (key, 0600); return both paths."""
    cert_path = directory / f"{stem}.pem"
    key_path = directory / f"{stem}.key"
    write_public(cert_path, cert_pem(cert))
    write_private(key_path, key_pem(key))
    return cert_path, key_path


def make_ca(common_name: str, *, valid_days: float = 3650) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed CA certificate and its key."""
    key = new_key("ec")
    cert = issue_certificate(
        name(common_name, organisation="hubject-connector development"),
        key, usage="ca", valid_days=valid_days,
    )
    return cert, key


def make_dev_pki(
    directory: Path,
    operator_id: str = "DE*ABC",
    *,
    server_names: Sequence[str] = ("localhost", "127.0.0.1"),
    valid_days: float = 365,
) -> DevPki:
    """Write a complete throwaway PKI for tests and the sandbox into ``directory``.

    Files: ``ca.pem``/``ca.key``; ``server.pem`` (SANs ``server_names``);
    ``hubject-client.pem`` (CN "Hubject"); ``cpo-client.pem`` (CN = ``operator_id``,
    OU = ``operator_id``); ``cpo-client-expired.pem`` (same subject, expired yesterday);
    ``other-ca.pem`` with ``other-client.pem`` and ``other-server.pem`` from it. Every
    ``.key`` file is written with mode 0600. Existing files are overwritten.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = make_ca("hubject-connector dev CA", valid_days=valid_days * 10)
    other_ca_cert, other_ca_key = make_ca("unrelated dev CA", valid_days=valid_days * 10)
    write_public(directory / "ca.pem", cert_pem(ca_cert))
    write_private(directory / "ca.key", key_pem(ca_key))
    write_public(directory / "other-ca.pem", cert_pem(other_ca_cert))
    write_private(directory / "other-ca.key", key_pem(other_ca_key))

    def issue(
        stem: str,
        subject: x509.Name,
        usage: Usage,
        *,
        by: tuple[x509.Certificate, PrivateKey] = (ca_cert, ca_key),
        sans: Sequence[str] = (),
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> tuple[Path, Path]:
        key = new_key("ec")
        cert = issue_certificate(
            subject, key, usage=usage, issuer_cert=by[0], issuer_key=by[1], sans=sans,
            not_before=not_before, not_after=not_after, valid_days=valid_days,
        )
        return write_pair(directory, stem, cert, key)

    cpo_subject = cpo_client_subject(operator_id)
    server = issue("server", name("localhost"), "server", sans=server_names)
    hubject = issue("hubject-client", name("Hubject", organisation="Hubject GmbH (dev)"),
                    "client")
    cpo = issue("cpo-client", cpo_subject, "client")
    now = dt.datetime.now(dt.UTC)
    expired = issue("cpo-client-expired", cpo_subject, "client",
                    not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1))
    other = (other_ca_cert, other_ca_key)
    other_client = issue("other-client", cpo_subject, "client", by=other)
    other_server = issue("other-server", name("localhost"), "server", by=other,
                         sans=server_names)
    return DevPki(
        directory=directory,
        operator_id=operator_id,
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca.key",
        server_cert=server[0],
        server_key=server[1],
        hubject_client_cert=hubject[0],
        hubject_client_key=hubject[1],
        cpo_client_cert=cpo[0],
        cpo_client_key=cpo[1],
        expired_client_cert=expired[0],
        expired_client_key=expired[1],
        other_ca_cert=directory / "other-ca.pem",
        other_ca_key=directory / "other-ca.key",
        other_client_cert=other_client[0],
        other_client_key=other_client[1],
        other_server_cert=other_server[0],
        other_server_key=other_server[1],
    )


def cpo_client_subject(
    operator_id: str, *, organisation: str | None = None, country: str | None = None
) -> x509.Name:
    """The subject of a CPO client certificate: CN and OU carry the OperatorID."""
    return name(operator_id, organisation=organisation, organisational_unit=operator_id,
                country=country)


def issue_client_certificate(
    pki: DevPki,
    cert_path: Path,
    key_path: Path,
    *,
    operator_id: str | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    valid_days: float = 365,
) -> x509.Certificate:
    """Issue a new CPO client certificate from ``pki``'s CA into the given files.

    For tests of certificate rotation and expiry; the subject is that of
    ``cpo_client_subject(operator_id or pki.operator_id)``.
    """
    ca_cert = load_certificate(pki.ca_cert)
    ca_key = load_private_key(pki.ca_key)
    key = new_key("ec")
    cert = issue_certificate(
        cpo_client_subject(operator_id or pki.operator_id), key, usage="client",
        issuer_cert=ca_cert, issuer_key=ca_key, not_before=not_before, not_after=not_after,
        valid_days=valid_days,
    )
    write_public(cert_path, cert_pem(cert))
    write_private(key_path, key_pem(key))
    return cert


# --------------------------------------------------------------------------------------
# CSR for Hubject onboarding
# --------------------------------------------------------------------------------------


def make_csr(
    operator_id: str,
    organisation: str | None = None,
    country: str | None = None,
    *,
    key_type: KeyType = "rsa",
    rsa_bits: int = DEFAULT_RSA_BITS,
    email: str | None = None,
) -> tuple[bytes, bytes]:
    """A new private key and a CSR for Hubject to sign: ``(key_pem, csr_pem)``.

    The subject's CN is the OperatorID (OU too), O the organisation and C the
    two-letter country, as Hubject asks for. The key is RSA (2048 bits by default) or
    EC P-256. Raises ``ValueError`` for an invalid country code.
    """
    if country is not None and not re.fullmatch(r"[A-Za-z]{2}", country):
        raise ValueError(f"country must be a two-letter ISO 3166 code, not {country!r}")
    key = new_key(key_type, rsa_bits=rsa_bits)
    subject = cpo_client_subject(
        operator_id, organisation=organisation, country=country.upper() if country else None
    )
    if email:
        subject = x509.Name([*subject, x509.NameAttribute(NameOID.EMAIL_ADDRESS, email)])
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return key_pem(key), csr.public_bytes(serialization.Encoding.PEM)


# --------------------------------------------------------------------------------------
# Inspection
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What a person or a readiness check wants to know about a certificate."""

    path: Path
    subject: str
    issuer: str
    common_name: str | None
    organisational_units: tuple[str, ...]
    sans: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    serial_number: int
    #: Whole days from ``now`` until expiry, rounded toward zero (negative once expired).
    days_left: int
    expired: bool
    not_yet_valid: bool
    #: SHA-256 fingerprint, upper-case hex with colons.
    fingerprint_sha256: str
    is_ca: bool


def _attributes(value: x509.Name, oid: x509.ObjectIdentifier) -> tuple[str, ...]:
    return tuple(str(a.value) for a in value.get_attributes_for_oid(oid))


def describe_certificate(
    cert: x509.Certificate, path: Path, *, now: dt.datetime | None = None
) -> CertificateInfo:
    """``CertificateInfo`` of a loaded certificate."""
    now = now or dt.datetime.now(dt.UTC)
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    try:
        san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = tuple(
            [f"DNS:{v}" for v in san_ext.get_values_for_type(x509.DNSName)]
            + [f"IP:{v}" for v in san_ext.get_values_for_type(x509.IPAddress)]
        )
    except x509.ExtensionNotFound:
        sans = ()
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    common_names = _attributes(cert.subject, NameOID.COMMON_NAME)
    fingerprint = cert.fingerprint(hashes.SHA256()).hex().upper()
    return CertificateInfo(
        path=path,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        common_name=common_names[0] if common_names else None,
        organisational_units=_attributes(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
        sans=sans,
        not_before=not_before,
        not_after=not_after,
        serial_number=cert.serial_number,
        days_left=int((not_after - now) / dt.timedelta(days=1)),
        expired=now >= not_after,
        not_yet_valid=now < not_before,
        fingerprint_sha256=":".join(fingerprint[i:i + 2] for i in range(0, len(fingerprint), 2)),
        is_ca=is_ca,
    )


def inspect_certificate(path: Path, *, now: dt.datetime | None = None) -> CertificateInfo:
    """Subject, issuer, SANs, validity and days left of the first certificate in ``path``.

    Raises ``CertificateError`` naming the file when it cannot be read.
    """
    return describe_certificate(load_certificate(path), path, now=now)


def _normalise_operator_id(value: str) -> str:
    # OperatorIDs are written "DE*ABC", "DEABC" or "DE-ABC" (ISO/IEC 15118 style); compare
    # them without separators and case.
    return re.sub(r"[*\-\s]", "", value).upper()


def subject_carries_operator_id(cert: x509.Certificate, operator_id: str) -> bool:
    """Whether the certificate's CN or an OU is the OperatorID (separators ignored).

    Hubject answers 017 when the client certificate does not belong to the OperatorID of
    the request.
    """
    wanted = _normalise_operator_id(operator_id)
    values = _attributes(cert.subject, NameOID.COMMON_NAME) + _attributes(
        cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME
    )
    return any(_normalise_operator_id(v) == wanted for v in values)
