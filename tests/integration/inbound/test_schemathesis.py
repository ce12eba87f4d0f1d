"""Schemathesis, driven by Hubject's official CPO OpenAPI, against the running server.

Limited to the four operations Hubject calls on the CPO, over mutual TLS with Hubject's
certificate, with a backend that answers every command. Valid and invalid requests alike
must get no 5xx and an answer the spec's eRoamingAcknowledgment schema accepts, as JSON.

Schemathesis' ``negative_data_rejection`` check is left out on purpose: it wants an invalid
body refused with a 4xx, whereas OICP answers data errors inside a 200 acknowledgement
(Result false, 022), and the spec documents only 200 for these operations.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from hubject_connector.certs import DevPki
from tests.integration.inbound.conftest import StackFactory

CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"
#: The four operations Hubject calls on the CPO, by the spec's operationIds.
OPERATIONS = r"^eRoamingAuthorizeRemote(Start|Stop|ReservationStart|ReservationStop)_"


async def schemathesis(server_url: str, pki: DevPki, spec: Path, workdir: Path,
                       config: str = "") -> str:
    """Run the schemathesis CLI against the server; its output (it must exit 0)."""
    config_file = workdir / "schemathesis.toml"
    config_file.write_text(config)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_file), "run",
        str(spec),
        "--url", server_url,
        "--include-operation-id-regex", OPERATIONS,
        "--checks", CHECKS,
        "--max-examples", "5",
        "--seed", "20240501",
        "--workers", "1",
        "--request-cert", str(pki.hubject_client_cert),
        "--request-cert-key", str(pki.hubject_client_key),
        "--tls-verify", str(pki.ca_cert),
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    assert "4 selected" in text, text
    assert "No issues found" in text, text
    return text


@pytest.mark.spec
async def test_the_official_spec_finds_no_5xx_and_no_answer_outside_the_spec(
    embedded_stacks: StackFactory, dev_pki: DevPki, oicp_spec_dir: Path, tmp_path: Path
) -> None:
    stack = await embedded_stacks.start()
    spec = oicp_spec_dir / "cpo" / "openapi.yaml"
    # The spec's examples name the ProviderID DE-DCB in the body: with the same in the
    # path, they are valid requests, which reach the backend and get its answer.
    output = await schemathesis(stack.server.url, dev_pki, spec, tmp_path,
                                '[parameters]\n"path.providerID" = "DE-DCB"\n')
    assert stack.backend.commands, output
    # Then any path parameter at all.
    await schemathesis(stack.server.url, dev_pki, spec, tmp_path)
