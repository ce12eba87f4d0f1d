"""What the transport's errors tell a caller."""

from __future__ import annotations

from hubject_connector.errors import ConnectorError, OicpError, TransportError
from hubject_connector.hubject.errors import (
    ClientCertificateExpired,
    ClientCertificateRejected,
    ConnectionFailed,
    ConnectionLost,
    HttpStatusError,
    InvalidAnswerError,
    OicpStatusError,
    RequestTimeout,
    TlsError,
)
from hubject_connector.oicp.codec import Issue, OicpValidationError


def test_status_errors_carry_the_code_and_its_transience() -> None:
    transient = OicpStatusError("021", "System error", operation="PushEvseData", attempts=3)
    assert transient.transient
    assert transient.code == "021"
    assert str(transient) == ("PushEvseData: Hubject answered status 021: System error "
                              "after 3 attempts")
    permanent = OicpStatusError("017")
    assert not permanent.transient
    assert "Unauthorized Access" in str(permanent)  # the table's meaning when none is sent
    assert isinstance(permanent, OicpError)
    assert isinstance(permanent, ConnectorError)


def test_identifiers_in_hubject_texts_are_masked_in_messages_only() -> None:
    info = "card 04A1B2C3D4E5F6 of contract DE-8EO-CAB123456-7 is locked"
    error = OicpStatusError("200", "EvcoID locked.", info)
    assert "04A1B2C3D4E5F6" not in str(error)
    assert "DE-8EO-CAB123456-7" not in str(error)
    assert "DE-8EO-" in str(error)
    assert error.additional_info == info


def test_invalid_answers_are_validation_errors_with_pointers() -> None:
    error = InvalidAnswerError([Issue("/StatusCode/Code", "is mandatory and missing")],
                               operation="AuthorizeStop")
    assert isinstance(error, OicpValidationError)
    assert "AuthorizeStop: invalid answer from Hubject: /StatusCode/Code" in str(error)


def test_transport_errors_say_whether_the_request_was_sent() -> None:
    assert ConnectionFailed("x").sent is False
    assert ConnectionLost("x").sent is None
    assert RequestTimeout("x").sent is None
    assert ClientCertificateRejected("x").sent is False
    assert issubclass(ClientCertificateExpired, ClientCertificateRejected)
    for cls in (ConnectionFailed, ConnectionLost, RequestTimeout, TlsError):
        assert issubclass(cls, TransportError)
        # A queue keeps the message: the same call may succeed later (TLS: once fixed).
        assert cls("x").transient
    assert HttpStatusError("x", status=503, transient=True).transient
    assert not HttpStatusError("x", status=404).transient
    assert str(ConnectionLost("lost", operation="PushEvseStatus", attempts=2)) == (
        "PushEvseStatus: lost (after 2 attempts)")
