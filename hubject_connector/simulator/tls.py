"""TLS contexts of the simulator: mutual TLS as Hubject's endpoints require it.

The server refuses the handshake of a client without a certificate from the configured CA
(``ssl.CERT_REQUIRED``), as Hubject does; the EMP side presents its own certificate and
verifies the CPO's server certificate against a CA given explicitly.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from hubject_connector.certs import CertificateError
from hubject_connector.simulator.recording import ClientCertificate


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise CertificateError(Path(exc.filename or cert), "no such file") from exc
    except (ssl.SSLError, OSError) as exc:
        raise CertificateError(cert, f"cannot load certificate and key {key}: {exc}") from exc


def _load_ca(context: ssl.SSLContext, ca: Path) -> None:
    try:
        context.load_verify_locations(cafile=ca)
    except FileNotFoundError as exc:
        raise CertificateError(ca, "no such file") from exc
    except (ssl.SSLError, OSError) as exc:
        raise CertificateError(ca, f"cannot load CA certificates: {exc}") from exc


def server_context(cert: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    """A server context that demands a client certificate issued by ``client_ca``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, cert, key)
    _load_ca(context, client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """A client context presenting ``cert`` and trusting only ``ca`` for the server."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, cert, key)
    _load_ca(context, ca)
    return context


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> ClientCertificate | None:
    """The verified certificate the peer presented on this connection, if any."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return ClientCertificate.from_der(der) if der else None
