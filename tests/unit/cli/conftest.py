"""Run the real ``hubject-connector`` command as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = Path(sys.executable).with_name("hubject-connector")

#: A valid eRoamingAuthorizeRemoteStart carrying a contract ID, for validation and logs.
REMOTE_START = {
    "SessionID": "b2b1a7d8-1234-4abc-9def-0123456789ab",
    "ProviderID": "DE-8EO",
    "EvseID": "DE*ABC*E123456",
    "Identification": {"RemoteIdentification": {"EvcoID": "DE-8EO-CAB123456-7"}},
}

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without HUBJECT_CONNECTOR_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBJECT_CONNECTOR_")}
    env.update(extra or {})
    return env


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run the console script (or ``python -m hubject_connector``) in ``tmp_path``."""

    def run(
        *args: str,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        module: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        if module or not SCRIPT.exists():
            command = [sys.executable, "-m", "hubject_connector", *args]
        else:
            command = [str(SCRIPT), *args]
        return subprocess.run(
            command,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=clean_env(env),
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    return run
