"""The project's entry points: what ``make test``, ``make run``, CI and the README promise.

``make`` is asked what it would do (``-n``, every target out of date, an empty venv
folder), so the test sees the real recipe without installing anything.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


def dry_run(target: str, venv: Path) -> list[str]:
    """The commands ``make TARGET`` would run on a clean clone, in order."""
    # A make above us (``make test`` runs pytest) passes its flags and job server down.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", target, f"VENV={venv}"],
        cwd=REPO, env=env, capture_output=True, text=True, check=True, timeout=60,
    )
    return result.stdout.splitlines()


def _index(commands: list[str], pattern: str) -> int:
    found = [i for i, command in enumerate(commands) if re.search(pattern, command)]
    assert found, f"no command matching {pattern!r} in {commands}"
    return found[0]


def test_make_test_builds_the_venv_then_runs_ruff_mypy_strict_and_pytest(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    commands = dry_run("test", venv)
    steps = [
        _index(commands, rf"-m venv {re.escape(str(venv))}$"),
        _index(commands, r"pip install .*-e '\.\[dev\]'"),
        _index(commands, rf"^{re.escape(str(venv))}/bin/ruff check \.$"),
        _index(commands, rf"^{re.escape(str(venv))}/bin/mypy --strict hubject_connector tests"),
        _index(commands, rf"^{re.escape(str(venv))}/bin/pytest"),
    ]
    assert steps == sorted(steps), commands


def test_make_run_installs_the_project_and_starts_it(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    commands = dry_run("run", venv)
    install = _index(commands, r"pip install .*-e '\.")
    # make run is the one-command sandbox (simulator, serve, demo backend).
    assert commands[-1].startswith(f"{venv}/bin/hubject-connector sandbox")
    assert install < len(commands) - 1


def test_ci_runs_make_test() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    lines = [line.strip() for line in script.splitlines()]
    assert "set -euo pipefail" in lines
    assert "make test" in lines


def test_the_readme_shows_make_test_and_make_run_first() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```", 2)[1]
    commands = [line.split("#", 1)[0].strip() for line in first_block.splitlines()[1:]]
    assert [c for c in commands if c] == ["make test", "make run"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_distribution_its_script_and_dependencies() -> None:
    project: dict[str, Any] = tomllib.loads(
        (REPO / "pyproject.toml").read_text(encoding="utf-8")
    )["project"]
    assert project["name"] == "hubject-connector"
    assert project["requires-python"] == ">=3.11"
    assert project["scripts"] == {"hubject-connector": "hubject_connector.cli:main"}
    assert _names(project["dependencies"]) >= {
        "aiohttp", "marshmallow", "cryptography", "structlog", "aiohttp-retry",
        "prometheus-client", "aio-pika",
    }
    dev = _names(project["optional-dependencies"]["dev"])
    assert dev >= {"pytest", "pytest-aiohttp", "hypothesis", "ruff", "mypy"}
    # The conformance tests' oracle: an OpenAPI (JSON-schema) validator.
    assert dev & {"openapi-schema-validator", "jsonschema", "openapi-spec-validator"}
