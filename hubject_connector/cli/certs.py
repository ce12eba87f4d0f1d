"""The ``certs`` commands: a development PKI, a key and CSR for Hubject, inspecting a file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hubject_connector import certs, cli
from hubject_connector.oicp import patterns


def register(subparsers: Any) -> None:
    """Add ``certs dev-pki``, ``certs csr`` and ``certs inspect`` to the command line."""
    group = subparsers.add_parser(
        "certs", help="certificates: development PKI, CSR for Hubject, inspect",
        description="Certificate tools for the mutual TLS with Hubject.",
    )
    commands = group.add_subparsers(title="certs commands", metavar="COMMAND")
    group.set_defaults(handler=lambda _args: cli.print_usage(group))

    dev = commands.add_parser(
        "dev-pki",
        help="write a throwaway CA and certificates for tests and the sandbox",
        description=(
            "Write a throwaway development PKI into DIR: a CA, a server certificate for "
            "localhost/127.0.0.1, a Hubject-like client certificate, a CPO client "
            "certificate whose CN and OU are the OperatorID, an expired CPO certificate and "
            "a second unrelated CA with certificates. Keys are written with mode 0600. "
            "Never use these outside development."
        ),
    )
    dev.add_argument("directory", type=Path, metavar="DIR")
    dev.add_argument("--operator-id", default="DE*ABC", help="OperatorID (default: DE*ABC)")
    dev.set_defaults(handler=dev_pki_command)

    csr = commands.add_parser(
        "csr",
        help="write a private key and a CSR to send to Hubject",
        description=(
            "Write a new private key (mode 0600) and a certificate signing request whose "
            "subject CN and OU are the OperatorID, for Hubject to issue the client "
            "certificate from."
        ),
    )
    csr.add_argument("--operator-id", required=True, help="your OperatorID, e.g. DE*ABC")
    csr.add_argument("--out-dir", type=Path, required=True, metavar="DIR")
    csr.add_argument("--organisation", "--organization", default=None,
                     help="legal name of the organisation (subject O)")
    csr.add_argument("--country", default=None, help="two-letter country code (subject C)")
    csr.add_argument("--email", default=None, help="contact e-mail put in the subject")
    csr.add_argument("--key-type", choices=("rsa", "ec"), default="rsa",
                     help="rsa (default, 2048 bits unless --rsa-bits) or ec (P-256)")
    csr.add_argument("--rsa-bits", type=int, choices=(2048, 3072, 4096), default=2048)
    csr.add_argument("--force", action="store_true", help="overwrite an existing key")
    csr.set_defaults(handler=csr_command)

    inspect = commands.add_parser(
        "inspect",
        help="print subject, issuer, SANs, validity and days left of a certificate",
        description="Print what matters about the first certificate in a PEM file.",
    )
    inspect.add_argument("file", type=Path, metavar="FILE")
    inspect.add_argument("--operator-id", default=None,
                         help="also say whether the subject carries this OperatorID")
    inspect.set_defaults(handler=inspect_command)


def _check_operator_id(value: str) -> bool:
    if patterns.matches("OperatorID", value):
        return True
    cli.error(f"--operator-id: {value!r} is not an OperatorID (e.g. DE*ABC)")
    return False


def dev_pki_command(args: argparse.Namespace) -> int:
    """Handler of ``certs dev-pki``."""
    if not _check_operator_id(args.operator_id):
        return cli.EXIT_USAGE
    pki = certs.make_dev_pki(args.directory, args.operator_id)
    print(f"development PKI for {pki.operator_id} written to {pki.directory}:")
    rows = [
        ("CA (trust for the simulator and inbound)", pki.ca_cert, pki.ca_key),
        ("server (localhost, 127.0.0.1)", pki.server_cert, pki.server_key),
        ("Hubject client", pki.hubject_client_cert, pki.hubject_client_key),
        ("CPO client (hubject.client_cert/key)", pki.cpo_client_cert, pki.cpo_client_key),
        ("CPO client, expired", pki.expired_client_cert, pki.expired_client_key),
        ("unrelated CA", pki.other_ca_cert, pki.other_ca_key),
        ("client from the unrelated CA", pki.other_client_cert, pki.other_client_key),
        ("server from the unrelated CA", pki.other_server_cert, pki.other_server_key),
    ]
    for label, cert, key in rows:
        print(f"  {label}: {cert.name}, {key.name}")
    print("these keys are unprotected: use them for development only")
    return cli.EXIT_OK


def csr_command(args: argparse.Namespace) -> int:
    """Handler of ``certs csr``."""
    if not _check_operator_id(args.operator_id):
        return cli.EXIT_USAGE
    stem = args.operator_id.replace("*", "").replace("-", "")
    out: Path = args.out_dir
    key_path = out / f"{stem}-client.key"
    csr_path = out / f"{stem}-client.csr"
    if key_path.exists() and not args.force:
        cli.error(f"{key_path} exists: not overwriting a private key (use --force)")
        return cli.EXIT_PROBLEM
    try:
        key_pem, csr_pem = certs.make_csr(
            args.operator_id, args.organisation, args.country, key_type=args.key_type,
            rsa_bits=args.rsa_bits, email=args.email,
        )
    except ValueError as exc:
        cli.error(f"certs csr: {exc}")
        return cli.EXIT_USAGE
    certs.write_private(key_path, key_pem)
    certs.write_public(csr_path, csr_pem)
    print(f"private key: {key_path} (mode 0600; keep it here, never send it)")
    print(f"CSR:         {csr_path}")
    print("next steps:")
    print(f"  1. send {csr_path.name} to Hubject (support/onboarding) for the QA or "
          "production environment")
    print("  2. store the certificate Hubject returns next to the key, e.g. "
          f"{out / (stem + '-client.pem')}, with any intermediate certificates")
    print("  3. get Hubject's server CA bundle and set in the configuration [hubject]:")
    print(f"       client_cert = \"{out / (stem + '-client.pem')}\"")
    print(f"       client_key = \"{key_path}\"")
    print("       ca_bundle = \"<Hubject's CA bundle>\"")
    print(f"       operator_id = \"{args.operator_id}\"")
    print("  4. check it: hubject-connector certs inspect "
          f"{out / (stem + '-client.pem')} --operator-id '{args.operator_id}'")
    return cli.EXIT_OK


def inspect_command(args: argparse.Namespace) -> int:
    """Handler of ``certs inspect``: 0 when valid now, 1 when expired or not yet valid."""
    info = certs.inspect_certificate(args.file)
    print(f"file:        {info.path}")
    print(f"subject:     {info.subject}")
    print(f"issuer:      {info.issuer}")
    print(f"SANs:        {', '.join(info.sans) if info.sans else '(none)'}")
    print(f"not before:  {info.not_before.isoformat()}")
    print(f"not after:   {info.not_after.isoformat()}")
    if info.expired:
        state = f"EXPIRED {-info.days_left} days ago"
    elif info.not_yet_valid:
        state = "NOT YET VALID"
    else:
        state = f"{info.days_left}"
    print(f"days left:   {state}")
    print(f"serial:      {info.serial_number:X}")
    print(f"sha256:      {info.fingerprint_sha256}")
    print(f"CA:          {'yes' if info.is_ca else 'no'}")
    ok = not (info.expired or info.not_yet_valid)
    if args.operator_id is not None:
        cert = certs.load_certificate(args.file)
        carries = certs.subject_carries_operator_id(cert, args.operator_id)
        print(f"OperatorID:  {args.operator_id} "
              f"{'in subject (CN/OU)' if carries else 'NOT in subject: Hubject answers 017'}")
        ok = ok and carries
    return cli.EXIT_OK if ok else cli.EXIT_PROBLEM
