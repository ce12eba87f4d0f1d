"""inbound/tls.py: settings that do not fit, the proxy's certificate header, readiness."""

from __future__ import annotations

import datetime as dt
import ssl
import urllib.parse
from dataclasses import replace
from pathlib import Path

import pytest

from hubject_connector import certs
from hubject_connector.certs import DevPki
from hubject_connector.config import InboundConfig
from hubject_connector.errors import ConfigError
from hubject_connector.inbound.tls import (
    HeaderCertificateError,
    HeaderCertificates,
    ServerTls,
    check_settings,
    refusal_reason,
)

HEADER = "X-SSL-Client-Cert"


def settings(pki: DevPki, **changes: object) -> InboundConfig:
    """mTLS with the dev PKI."""
    base = InboundConfig(tls_cert=pki.server_cert, tls_key=pki.server_key,
                         client_ca=pki.ca_cert)
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"tls_cert": None, "tls_key": None}, "inbound.tls_cert"),
        ({"client_ca": None}, "inbound.client_ca"),
        ({"client_cert_mode": "optional", "client_ca": None}, "inbound.client_ca"),
        ({"client_cert_mode": "off", "client_ca": None, "client_cert_header": HEADER},
         "inbound.client_ca"),
    ],
    ids=["required-without-cert", "required-without-ca", "optional-without-ca",
         "header-without-ca"],
)
def test_settings_that_do_not_fit_name_the_setting(
    dev_pki: DevPki, changes: dict[str, object], setting: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        check_settings(settings(dev_pki, **changes))
    assert refused.value.key == setting


def test_plain_http_behind_a_proxy_needs_no_certificate(dev_pki: DevPki) -> None:
    tls = ServerTls(settings(dev_pki, client_cert_mode="off", tls_cert=None, tls_key=None))
    assert not tls.enabled
    assert tls.problem() is None


def escaped(path: Path) -> str:
    """URL-encoded PEM, as nginx's $ssl_client_escaped_cert."""
    return urllib.parse.quote(path.read_text())


def header_verifier(pki: DevPki) -> HeaderCertificates:
    """The verifier of the proxy header, trusting the dev CA."""
    return HeaderCertificates(HEADER, certs.load_certificates(pki.ca_cert))


def test_the_proxy_header_takes_a_client_certificate_of_the_trusted_ca(dev_pki: DevPki) -> None:
    leaf = header_verifier(dev_pki).verify(escaped(dev_pki.hubject_client_cert))
    assert leaf == certs.load_certificate(dev_pki.hubject_client_cert)


@pytest.mark.parametrize(
    ("value", "reason", "words"),
    [
        (None, "client_certificate_header_missing", "no client certificate"),
        ("", "client_certificate_header_missing", "no client certificate"),
        ("garbage", "client_certificate_header_invalid", "no URL-encoded PEM"),
    ],
)
def test_the_proxy_header_without_a_certificate_is_refused(
    dev_pki: DevPki, value: str | None, reason: str, words: str
) -> None:
    with pytest.raises(HeaderCertificateError) as refused:
        header_verifier(dev_pki).verify(value)
    assert refused.value.reason == reason
    assert words in str(refused.value)


@pytest.mark.parametrize(
    "which", ["other_client_cert", "expired_client_cert", "server_cert"],
    ids=["other-ca", "expired", "server-certificate"],
)
def test_the_proxy_header_refuses_what_a_handshake_would_refuse(
    dev_pki: DevPki, which: str
) -> None:
    with pytest.raises(HeaderCertificateError, match="not trusted") as refused:
        header_verifier(dev_pki).verify(escaped(getattr(dev_pki, which)))
    assert refused.value.reason == "client_certificate_header_invalid"


def test_an_expired_server_certificate_makes_the_server_unready(dev_pki: DevPki) -> None:
    not_after = certs.load_certificate(dev_pki.server_cert).not_valid_after_utc
    tls = ServerTls(settings(dev_pki), now=lambda: not_after + dt.timedelta(seconds=1))
    problem = tls.problem()
    assert problem is not None
    assert "expired" in problem
    assert str(dev_pki.server_cert) in problem
    assert ServerTls(settings(dev_pki)).problem() is None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ssl.SSLError(1, "[SSL: PEER_DID_NOT_RETURN_A_CERTIFICATE] peer did not return a "
                         "certificate"), "no_client_certificate"),
        (ssl.SSLError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
         "untrusted_client_certificate"),
        (ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca"),
         "untrusted_client_certificate"),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
         "tls_handshake_failed"),
        (ssl.SSLError(1, "[SSL: HTTP_REQUEST] http request"), "not_tls"),
        (ConnectionResetError(), "closed_during_handshake"),
        (TimeoutError(), "handshake_timeout"),
    ],
)
def test_failed_handshakes_are_told_apart(error: BaseException, reason: str) -> None:
    assert refusal_reason(error) == reason
