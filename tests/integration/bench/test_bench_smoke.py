"""Each benchmark runs end to end in its small form and its correctness checks pass.

Nothing is timed here (figures are for ``make bench``): a benchmark prints each check as
``check: <what>: PASS|FAIL`` and exits 1 when one fails. The runs append to a results file
of the test's own, never to bench/results.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CHECK = re.compile(r"^check: (?P<what>.+): (?P<verdict>PASS|FAIL)(?: \((?P<detail>.*)\))?$",
                   re.M)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgresql, pytest.mark.slow]


def run_benchmark(name: str, results: Path, *args: str) -> dict[str, str]:
    """Run ``bench/<name>.py`` small; its checks (what → verdict and detail)."""
    finished = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *args],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    output = finished.stdout + finished.stderr
    checks = {m["what"]: f"{m['verdict']} {m['detail'] or ''}".strip()
              for m in CHECK.finditer(finished.stdout)}
    failed = {what: verdict for what, verdict in checks.items() if verdict.startswith("FAIL")}
    assert failed == {}, output[-4000:]
    assert finished.returncode == 0, output[-4000:]
    return checks


def quick(name: str, results: Path) -> dict[str, str]:
    """Run one of the benchmarks of this suite with --quick into ``results``."""
    checks = run_benchmark(name, results, "--quick", "--results", str(results))
    text = results.read_text(encoding="utf-8")
    assert f"(bench/{name}.py)" in text
    assert re.search(r"^- machine: nproc \d+, .+, CPython 3\.\d+", text, re.M), text
    assert re.search(r"^- date: \d{4}-\d\d-\d\d \d\d:\d\d UTC$", text, re.M), text
    return checks


def test_status_throughput(tmp_path: Path) -> None:
    checks = quick("status_throughput", tmp_path / "results.md")
    assert set(checks) == {
        "the simulator's final state is the latest status of every EVSE",
        "no overlapping pushes",
        "no minute over the limit",
        "one delivery result per event",
    }


def test_cdr_throughput(tmp_path: Path) -> None:
    checks = quick("cdr_throughput", tmp_path / "results.md")
    assert {"sqlite: every CDR at Hubject", "postgresql: every CDR at Hubject",
            "all CDRs at Hubject, each exactly once",
            "one delivery result for each CDR, every one accepted",
            "no CDR sent again once Hubject's answer had arrived"} <= set(checks)


def test_contract_codec(tmp_path: Path) -> None:
    checks = quick("contract_codec", tmp_path / "results.md")
    assert set(checks) == {
        "every documented message the backend sends passes the contract",
        "what codec.encode writes decodes to an equal model",
    }


def test_memory(tmp_path: Path) -> None:
    checks = quick("memory", tmp_path / "results.md")
    assert "the fullLoad carried every known EVSE's status" in checks


@pytest.mark.skipif(not (REPO / "bench" / "remote_start.py").exists(),
                    reason="bench/remote_start.py has not landed")
def test_remote_start(tmp_path: Path) -> None:
    # Its own options (it belongs to the inbound server): a few round trips, no record.
    run_benchmark("remote_start", tmp_path / "results.md", "--count", "20", "--blocks", "2",
                  "--no-record")
