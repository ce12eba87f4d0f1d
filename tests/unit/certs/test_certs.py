"""The development PKI, CSRs for Hubject and certificate inspection."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hubject_connector import certs
from hubject_connector.certs import CertificateError, DevPki
from hubject_connector.errors import ConfigError


def _verifies(ca: Path, cert: Path) -> bool:
    """Whether OpenSSL accepts ``cert`` as issued by ``ca`` (a real chain check)."""
    issuer = certs.load_certificate(ca)
    subject = certs.load_certificate(cert)
    try:
        subject.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def test_dev_pki_writes_every_file_with_private_keys_0600(dev_pki: DevPki) -> None:
    keys = [dev_pki.ca_key, dev_pki.server_key, dev_pki.hubject_client_key,
            dev_pki.cpo_client_key, dev_pki.expired_client_key, dev_pki.other_ca_key,
            dev_pki.other_client_key, dev_pki.other_server_key]
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
        assert b"PRIVATE KEY" in key.read_bytes()
    for cert in [dev_pki.ca_cert, dev_pki.server_cert, dev_pki.cpo_client_cert,
                 dev_pki.other_ca_cert]:
        assert cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_server_certificate_names_localhost_and_loopback(dev_pki: DevPki) -> None:
    cert = certs.load_certificate(dev_pki.server_cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage


def test_cpo_client_certificate_carries_the_operator_id(dev_pki: DevPki) -> None:
    cert = certs.load_certificate(dev_pki.cpo_client_cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "DE*ABC"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == (
        "DE*ABC"
    )
    assert certs.subject_carries_operator_id(cert, "DE*ABC")
    # Hubject writes OperatorIDs with and without the separator.
    assert certs.subject_carries_operator_id(cert, "deabc")
    assert not certs.subject_carries_operator_id(cert, "DE*XYZ")
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage


def test_chains(dev_pki: DevPki) -> None:
    assert _verifies(dev_pki.ca_cert, dev_pki.server_cert)
    assert _verifies(dev_pki.ca_cert, dev_pki.cpo_client_cert)
    assert _verifies(dev_pki.ca_cert, dev_pki.hubject_client_cert)
    assert _verifies(dev_pki.ca_cert, dev_pki.expired_client_cert)
    assert _verifies(dev_pki.other_ca_cert, dev_pki.other_client_cert)
    assert _verifies(dev_pki.other_ca_cert, dev_pki.other_server_cert)
    assert not _verifies(dev_pki.ca_cert, dev_pki.other_client_cert)
    assert not _verifies(dev_pki.other_ca_cert, dev_pki.cpo_client_cert)


def test_expired_certificate_is_expired(dev_pki: DevPki) -> None:
    info = certs.inspect_certificate(dev_pki.expired_client_cert)
    assert info.expired
    assert info.days_left < 0
    assert not certs.inspect_certificate(dev_pki.cpo_client_cert).expired


def test_files_load_into_openssl(dev_pki: DevPki) -> None:
    # The PEM files are what ssl needs: a server context and a client context load them.
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(dev_pki.server_cert, dev_pki.server_key)
    server.load_verify_locations(dev_pki.ca_cert)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_cert_chain(dev_pki.cpo_client_cert, dev_pki.cpo_client_key)


def test_dev_pki_overwrites_keys_and_keeps_them_private(tmp_path: Path) -> None:
    key = tmp_path / "ca.key"
    key.write_text("old")
    key.chmod(0o644)
    certs.make_dev_pki(tmp_path, operator_id="FR*XYZ")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text() != "old"
    cert = certs.load_certificate(tmp_path / "cpo-client.pem")
    assert certs.subject_carries_operator_id(cert, "FR*XYZ")


def test_issue_certificate_with_given_validity_and_issuer(dev_pki: DevPki) -> None:
    ca = certs.load_certificate(dev_pki.ca_cert)
    ca_key = certs.load_private_key(dev_pki.ca_key)
    key = certs.new_key("ec")
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(2030, 2, 1, tzinfo=dt.UTC)
    cert = certs.issue_certificate(certs.name("DE*ABC", organisation="ACME"), key,
                                   usage="client", issuer_cert=ca, issuer_key=ca_key,
                                   not_before=start, not_after=end)
    assert cert.issuer == ca.subject
    assert cert.not_valid_before_utc == start
    assert cert.not_valid_after_utc == end
    cert.verify_directly_issued_by(ca)
    info = certs.describe_certificate(cert, Path("x.pem"), now=start - dt.timedelta(days=1))
    assert info.not_yet_valid
    assert info.days_left == 32


def test_issue_client_certificate_into_files(dev_pki: DevPki, tmp_path: Path) -> None:
    cert = certs.issue_client_certificate(dev_pki, tmp_path / "c.pem", tmp_path / "c.key",
                                          valid_days=3)
    assert stat.S_IMODE((tmp_path / "c.key").stat().st_mode) == 0o600
    assert certs.inspect_certificate(tmp_path / "c.pem").days_left in (2, 3)
    cert.verify_directly_issued_by(certs.load_certificate(dev_pki.ca_cert))


@pytest.mark.parametrize(("key_type", "key_class"), [("rsa", rsa.RSAPrivateKey),
                                                     ("ec", ec.EllipticCurvePrivateKey)])
def test_make_csr(key_type: certs.KeyType, key_class: type) -> None:
    key_pem, csr_pem = certs.make_csr("DE*ABC", "ACME Charging GmbH", "de", key_type=key_type)
    csr = x509.load_pem_x509_csr(csr_pem)
    assert csr.is_signature_valid
    subject = {a.oid: a.value for a in csr.subject}
    assert subject[NameOID.COMMON_NAME] == "DE*ABC"
    assert subject[NameOID.ORGANIZATIONAL_UNIT_NAME] == "DE*ABC"
    assert subject[NameOID.ORGANIZATION_NAME] == "ACME Charging GmbH"
    assert subject[NameOID.COUNTRY_NAME] == "DE"
    key = certs.load_private_key_bytes(key_pem)
    assert isinstance(key, key_class)
    assert key.public_key().public_numbers() == csr.public_key().public_numbers()  # type: ignore[union-attr]
    if isinstance(key, rsa.RSAPrivateKey):
        assert key.key_size == 2048


def test_make_csr_refuses_a_bad_country() -> None:
    with pytest.raises(ValueError, match="country"):
        certs.make_csr("DE*ABC", "ACME", "Germany", key_type="ec")


def test_inspect_certificate(dev_pki: DevPki) -> None:
    info = certs.inspect_certificate(dev_pki.server_cert)
    assert info.subject == "CN=localhost"
    assert "hubject-connector dev CA" in info.issuer
    assert info.sans == ("DNS:localhost", "IP:127.0.0.1")
    assert info.not_before < info.not_after
    assert 360 <= info.days_left <= 365
    assert not info.is_ca
    assert certs.inspect_certificate(dev_pki.ca_cert).is_ca


def test_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(CertificateError) as raised:
        certs.inspect_certificate(missing)
    assert raised.value.path == missing
    assert str(missing) in str(raised.value)
    assert isinstance(raised.value, ConfigError)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(CertificateError, match=r"garbage\.pem"):
        certs.load_certificate(garbage)
    with pytest.raises(CertificateError, match=r"garbage\.pem"):
        certs.load_private_key(garbage)
