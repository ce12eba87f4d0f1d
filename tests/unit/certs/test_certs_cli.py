"""``hubject-connector certs dev-pki | csr | inspect``, run in-process."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from hubject_connector import certs, cli
from hubject_connector.certs import DevPki


@pytest.fixture(autouse=True)
def keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs leave the process-wide logging setup alone."""
    monkeypatch.setattr(cli, "configure_logging", lambda *args, **kwargs: None)


def run(*args: str) -> int:
    return cli.main(list(args))


def test_dev_pki_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("certs", "dev-pki", str(tmp_path / "pki"), "--operator-id", "NL*XYZ") == 0
    out = capsys.readouterr().out
    assert "cpo-client.pem" in out
    cert = certs.load_certificate(tmp_path / "pki" / "cpo-client.pem")
    assert certs.subject_carries_operator_id(cert, "NL*XYZ")
    assert stat.S_IMODE((tmp_path / "pki" / "cpo-client.key").stat().st_mode) == 0o600
    # File names only: no key material on the terminal.
    assert "PRIVATE KEY" not in out


def test_dev_pki_refuses_a_bad_operator_id(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert run("certs", "dev-pki", str(tmp_path), "--operator-id", "nonsense") == 2
    assert "OperatorID" in capsys.readouterr().err
    assert not (tmp_path / "ca.pem").exists()


def test_csr_command_writes_key_0600_and_csr(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = run("certs", "csr", "--operator-id", "DE*ABC", "--out-dir", str(tmp_path),
               "--organisation", "ACME Charging", "--country", "DE", "--key-type", "ec")
    assert code == 0
    out = capsys.readouterr().out
    key = tmp_path / "DEABC-client.key"
    csr_path = tmp_path / "DEABC-client.csr"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "DE*ABC"
    assert "next steps" in out
    assert str(csr_path.name) in out
    # The private key never appears in the output.
    assert "PRIVATE KEY" not in out


def test_csr_command_does_not_overwrite_a_key(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "DEABC-client.key"
    key.write_text("precious")
    code = run("certs", "csr", "--operator-id", "DE*ABC", "--out-dir", str(tmp_path),
               "--key-type", "ec")
    assert code == 1
    assert key.read_text() == "precious"
    assert "--force" in capsys.readouterr().err


def test_inspect_command(dev_pki: DevPki, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("certs", "inspect", str(dev_pki.server_cert)) == 0
    out = capsys.readouterr().out
    assert "subject:     CN=localhost" in out
    assert "DNS:localhost, IP:127.0.0.1" in out
    assert "days left:" in out
    assert run("certs", "inspect", str(dev_pki.cpo_client_cert), "--operator-id",
               "DE*ABC") == 0
    assert "in subject" in capsys.readouterr().out
    assert run("certs", "inspect", str(dev_pki.cpo_client_cert), "--operator-id",
               "DE*XYZ") == 1
    assert "017" in capsys.readouterr().out


def test_inspect_command_flags_an_expired_certificate(
    dev_pki: DevPki, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("certs", "inspect", str(dev_pki.expired_client_cert)) == 1
    assert "EXPIRED" in capsys.readouterr().out


def test_inspect_command_names_a_missing_file(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.pem"
    assert run("certs", "inspect", str(missing)) == 2
    assert str(missing) in capsys.readouterr().err


def test_inspect_never_prints_a_private_key(dev_pki: DevPki, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    key_pem = dev_pki.cpo_client_key.read_text()
    body = "".join(key_pem.splitlines()[1:-1])
    # A key file given by mistake is refused without being echoed ...
    assert run("certs", "inspect", str(dev_pki.cpo_client_key)) == 2
    captured = capsys.readouterr()
    assert "PRIVATE KEY" not in captured.out + captured.err
    assert body[:40] not in captured.out + captured.err
    # ... and a file holding certificate and key shows the certificate only.
    combined = tmp_path / "combined.pem"
    combined.write_text(dev_pki.cpo_client_cert.read_text() + key_pem)
    assert run("certs", "inspect", str(combined), "--operator-id", "DE*ABC") == 0
    out = capsys.readouterr().out
    assert "subject:     CN=DE*ABC,OU=DE*ABC" in out
    assert "PRIVATE KEY" not in out
    assert body[:40] not in out
