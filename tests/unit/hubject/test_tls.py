"""The client TLS context: what it trusts, what it presents, rotation and expiry warnings."""

from __future__ import annotations

import datetime as dt
import shutil
import ssl
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from hubject_connector import certs
from hubject_connector.certs import CertificateError, DevPki
from hubject_connector.config import ConfigErrors, HubjectConfig
from hubject_connector.errors import ConfigError
from hubject_connector.hubject.tls import ClientTls, build_client_context
from hubject_connector.metrics import HubjectMetrics


class Ticker:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def files(tmp_path: Path) -> DevPki:
    """A PKI of the test's own, so the test may replace its files."""
    return certs.make_dev_pki(tmp_path / "pki")


def config_for(pki: DevPki, **changes: object) -> HubjectConfig:
    base = HubjectConfig(operator_id=pki.operator_id, client_cert=pki.cpo_client_cert,
                         client_key=pki.cpo_client_key, ca_bundle=pki.ca_cert,
                         cert_reload_interval_seconds=30.0)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_context_verifies_and_trusts_only_the_bundle(dev_pki: DevPki) -> None:
    context, cert = build_client_context(config_for(dev_pki))
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    # Exactly the configured CA, nothing from the system store.
    trusted = context.get_ca_certs()
    names = [dict(rdn[0] for rdn in c["subject"]) for c in trusted]  # type: ignore[misc]
    assert [n["commonName"] for n in names] == ["hubject-connector dev CA"]
    assert cert is not None
    assert certs.subject_carries_operator_id(cert, "DE*ABC")


def test_a_ca_bundle_is_required(dev_pki: DevPki) -> None:
    with pytest.raises(ConfigError) as raised:
        build_client_context(config_for(dev_pki, ca_bundle=None))
    assert raised.value.key == "hubject.ca_bundle"


def test_unreadable_files_are_named(dev_pki: DevPki, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    for setting, field in (("hubject.client_cert", "client_cert"),
                           ("hubject.client_key", "client_key"),
                           ("hubject.ca_bundle", "ca_bundle"),
                           ("hubject.client_chain", "client_chain")):
        with pytest.raises(CertificateError) as raised:
            build_client_context(config_for(dev_pki, **{field: missing}))
        assert raised.value.key == setting
        assert raised.value.path == missing
        assert str(missing) in str(raised.value)


def test_a_key_of_another_certificate_is_refused(dev_pki: DevPki) -> None:
    with pytest.raises(CertificateError) as raised:
        build_client_context(config_for(dev_pki, client_key=dev_pki.server_key))
    assert raised.value.key == "hubject.client_key"
    assert "does not belong" in str(raised.value)


def test_an_encrypted_key_is_refused_not_prompted_for(dev_pki: DevPki, tmp_path: Path) -> None:
    key = certs.load_private_key(dev_pki.cpo_client_key)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(CertificateError) as raised:
        build_client_context(config_for(dev_pki, client_key=encrypted))
    assert raised.value.key == "hubject.client_key"


def test_key_inside_the_certificate_file_and_a_separate_chain(dev_pki: DevPki,
                                                             tmp_path: Path) -> None:
    combined = tmp_path / "combined.pem"
    combined.write_bytes(dev_pki.cpo_client_cert.read_bytes()
                         + dev_pki.cpo_client_key.read_bytes())
    context, cert = build_client_context(
        config_for(dev_pki, client_cert=combined, client_key=None, client_chain=dev_pki.ca_cert))
    assert cert is not None
    assert isinstance(context, ssl.SSLContext)


def test_operator_id_mismatch_is_warned(dev_pki: DevPki) -> None:
    with capture_logs() as logs:
        ClientTls(config_for(dev_pki, operator_id="DE*XYZ"))
    warnings = [e for e in logs if "017" in e["event"]]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    with capture_logs() as logs:
        ClientTls(config_for(dev_pki))
    assert not [e for e in logs if "017" in e["event"]]


def test_expiry_gauge_and_warnings(dev_pki: DevPki, tmp_path: Path) -> None:
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "c.key"
    issued = certs.issue_client_certificate(dev_pki, cert_path, key_path, valid_days=40)
    registry = CollectorRegistry()
    metrics = HubjectMetrics(registry)
    today = dt.datetime.now(dt.UTC)
    wall = [today]
    clock = Ticker()
    config = config_for(dev_pki, client_cert=cert_path, client_key=key_path,
                        cert_reload_interval_seconds=1.0)
    with capture_logs() as logs:
        tls = ClientTls(config, metrics=metrics, clock=clock, now=lambda: wall[0])
        gauge = registry.get_sample_value(
            "hubject_connector_client_certificate_not_after_timestamp_seconds")
        assert gauge == issued.not_valid_after_utc.timestamp()
        assert not [e for e in logs if "expires within" in e["event"]]
        # 20 days later: within 30 days, warned once however often it is checked.
        wall[0] = today + dt.timedelta(days=20)
        for _ in range(3):
            clock.now += 2
            tls.context()
        # 35 days later: within 7 days.
        wall[0] = today + dt.timedelta(days=35)
        clock.now += 2
        tls.context()
        wall[0] = today + dt.timedelta(days=41)
        clock.now += 2
        tls.context()
    thresholds = [e["threshold_days"] for e in logs if "expires within" in e["event"]]
    assert thresholds == [30, 7]
    assert [e["log_level"] for e in logs if "has expired" in e["event"]] == ["error"]


def test_rotation_swaps_the_context_after_the_interval(files: DevPki, tmp_path: Path) -> None:
    registry = CollectorRegistry()
    clock = Ticker()
    tls = ClientTls(config_for(files), metrics=HubjectMetrics(registry), clock=clock)
    first = tls.context()
    old_serial = tls.certificate.serial_number if tls.certificate else None
    new = certs.issue_client_certificate(files, tmp_path / "n.pem", tmp_path / "n.key")
    # As a Kubernetes secret update: both files replaced.
    shutil.copy(tmp_path / "n.pem", files.cpo_client_cert)
    shutil.copy(tmp_path / "n.key", files.cpo_client_key)
    clock.now += 10
    assert tls.context() is first  # not checked before the interval
    clock.now += 30
    second = tls.context()
    assert second is not first
    assert tls.certificate is not None
    assert tls.certificate.serial_number == new.serial_number != old_serial
    assert registry.get_sample_value(
        "hubject_connector_client_certificate_reloads_total", {"result": "ok"}) == 1
    clock.now += 60
    assert tls.context() is second  # unchanged files: same context


def test_a_half_rotated_set_keeps_the_old_context(files: DevPki, tmp_path: Path) -> None:
    registry = CollectorRegistry()
    clock = Ticker()
    tls = ClientTls(config_for(files), metrics=HubjectMetrics(registry), clock=clock)
    first = tls.context()
    certs.issue_client_certificate(files, tmp_path / "n.pem", tmp_path / "n.key")
    shutil.copy(tmp_path / "n.pem", files.cpo_client_cert)  # the key not yet
    with capture_logs() as logs:
        clock.now += 31
        assert tls.context() is first
        clock.now += 31
        assert tls.context() is first
    assert len([e for e in logs if e["log_level"] == "error"]) == 1  # logged once
    assert registry.get_sample_value(
        "hubject_connector_client_certificate_reloads_total", {"result": "error"}) == 2
    shutil.copy(tmp_path / "n.key", files.cpo_client_key)  # now complete
    clock.now += 31
    assert tls.context() is not first


def test_watch_checks_the_files_between_requests(files: DevPki, tmp_path: Path) -> None:
    registry = CollectorRegistry()
    tls = ClientTls(config_for(files, cert_reload_interval_seconds=5.0),
                    metrics=HubjectMetrics(registry))
    rotated = certs.issue_client_certificate(files, tmp_path / "n.pem", tmp_path / "n.key")
    naps: list[float] = []

    class Stop(Exception):
        pass

    async def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            shutil.copy(tmp_path / "n.pem", files.cpo_client_cert)
            shutil.copy(tmp_path / "n.key", files.cpo_client_key)
        if len(naps) == 3:
            raise Stop

    watching = tls.watch(sleep)
    with pytest.raises(Stop):
        watching.send(None)  # the fake sleep never suspends: runs until Stop
    assert naps == [5.0, 5.0, 5.0]
    assert tls.certificate is not None
    assert tls.certificate.serial_number == rotated.serial_number
    assert registry.get_sample_value(
        "hubject_connector_client_certificate_not_after_timestamp_seconds"
    ) == rotated.not_valid_after_utc.timestamp()


def test_watch_carries_on_when_a_file_vanishes_mid_rotation(files: DevPki, tmp_path: Path) -> None:
    tls = ClientTls(config_for(files, cert_reload_interval_seconds=5.0),
                    metrics=HubjectMetrics(CollectorRegistry()))
    rotated = certs.issue_client_certificate(files, tmp_path / "n.pem", tmp_path / "n.key")
    naps: list[float] = []

    class Stop(Exception):
        pass

    async def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            # Mid-rotation: the certificate file is briefly gone.
            files.cpo_client_cert.unlink()
        if len(naps) == 3:
            shutil.copy(tmp_path / "n.pem", files.cpo_client_cert)
            shutil.copy(tmp_path / "n.key", files.cpo_client_key)
        if len(naps) == 4:
            raise Stop

    watching = tls.watch(sleep)
    with pytest.raises(Stop):
        watching.send(None)
    assert naps == [5.0, 5.0, 5.0, 5.0]
    assert tls.certificate is not None
    assert tls.certificate.serial_number == rotated.serial_number


def _rotate_to(files: DevPki, tmp_path: Path, **issue: object) -> int:
    """Issue a client certificate with ``issue`` options and put it in place of the
    current files; return its serial number."""
    new_dir = tmp_path / f"rotated-{len(list(tmp_path.iterdir()))}"
    new_dir.mkdir()
    cert = certs.issue_client_certificate(files, new_dir / "c.pem", new_dir / "c.key",
                                          **issue)  # type: ignore[arg-type]
    shutil.copy(new_dir / "c.key", files.cpo_client_key)
    shutil.copy(new_dir / "c.pem", files.cpo_client_cert)
    return cert.serial_number


@pytest.mark.parametrize(
    ("issue", "reason"),
    [
        ({"not_before": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
          "not_after": dt.datetime(2021, 1, 1, tzinfo=dt.UTC)}, "expired"),
        ({"not_before": dt.datetime.now(dt.UTC) + dt.timedelta(days=3)}, "not valid before"),
        ({"operator_id": "DE*XYZ"}, "does not carry the OperatorID DE*ABC"),
    ],
    ids=["expired", "not-yet-valid", "other-operator"],
)
def test_rotation_keeps_a_good_certificate_instead_of_one_hubject_refuses(
    files: DevPki, tmp_path: Path, issue: dict[str, object], reason: str,
) -> None:
    registry = CollectorRegistry()
    clock = Ticker()
    tls = ClientTls(config_for(files), metrics=HubjectMetrics(registry), clock=clock)
    current = tls.context()
    serial = tls.certificate.serial_number if tls.certificate else None
    _rotate_to(files, tmp_path, **issue)
    with capture_logs() as logs:
        for _ in range(2):
            clock.now += 31
            assert tls.context() is current
    assert tls.certificate is not None
    assert tls.certificate.serial_number == serial
    refusals = [e for e in logs if "refused" in e["event"]]
    assert len(refusals) == 1  # logged once per set, however often it is looked at
    assert refusals[0]["log_level"] == "error"
    assert reason in refusals[0]["reason"]
    assert registry.get_sample_value(
        "hubject_connector_client_certificate_reloads_total", {"result": "refused"}) == 2
    # The renewed certificate that comes next is taken.
    good = _rotate_to(files, tmp_path)
    clock.now += 31
    assert tls.context() is not current
    assert tls.certificate.serial_number == good


def test_rotation_replaces_a_certificate_that_has_expired_meanwhile(
    files: DevPki, tmp_path: Path
) -> None:
    wall = [dt.datetime.now(dt.UTC)]
    clock = Ticker()
    cert_path, key_path = tmp_path / "short.pem", tmp_path / "short.key"
    certs.issue_client_certificate(files, cert_path, key_path, valid_days=1)
    config = config_for(files, client_cert=cert_path, client_key=key_path)
    tls = ClientTls(config, clock=clock, now=lambda: wall[0])
    wall[0] += dt.timedelta(days=2)
    assert tls.unusable() is not None
    new = certs.issue_client_certificate(files, tmp_path / "n.pem", tmp_path / "n.key",
                                         valid_days=30)
    shutil.copy(tmp_path / "n.key", key_path)
    shutil.copy(tmp_path / "n.pem", cert_path)
    clock.now += 31
    tls.context()
    assert tls.certificate is not None
    assert tls.certificate.serial_number == new.serial_number
    assert tls.unusable() is None


def test_no_expired_and_no_missing_certificate_at_start(dev_pki: DevPki) -> None:
    with pytest.raises(CertificateError) as expired:
        ClientTls(config_for(dev_pki, client_cert=dev_pki.expired_client_cert,
                             client_key=dev_pki.expired_client_key))
    assert expired.value.key == "hubject.client_cert"
    assert expired.value.path == dev_pki.expired_client_cert
    assert "expired at" in str(expired.value)
    with pytest.raises(ConfigError) as missing:
        ClientTls(config_for(dev_pki, client_cert=None, client_key=None))
    assert missing.value.key == "hubject.client_cert"
    assert "no client certificate" in str(missing.value)


def test_a_certificate_not_valid_yet_is_refused_at_start(dev_pki: DevPki, tmp_path: Path) -> None:
    cert_path, key_path = tmp_path / "future.pem", tmp_path / "future.key"
    certs.issue_client_certificate(
        dev_pki, cert_path, key_path,
        not_before=dt.datetime.now(dt.UTC) + dt.timedelta(days=1), valid_days=30)
    with pytest.raises(CertificateError) as raised:
        ClientTls(config_for(dev_pki, client_cert=cert_path, client_key=key_path))
    assert raised.value.key == "hubject.client_cert"
    assert "not valid before" in str(raised.value)


def test_every_unusable_file_is_reported_at_once(dev_pki: DevPki, tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as raised:
        build_client_context(config_for(dev_pki, ca_bundle=None,
                                        client_key=tmp_path / "missing.key",
                                        client_chain=tmp_path / "missing-chain.pem"))
    assert [e.key for e in raised.value.errors] == [
        "hubject.ca_bundle", "hubject.client_chain", "hubject.client_key"]
