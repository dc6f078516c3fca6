"""tools/gpu_check.sh cannot rot before a GPU runs it: its CPU dry run (wheel check, fresh
install, one measured section, the merged gpu_check.json) runs here, and tools/gpu_report.py
turns the result into the tables of docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_the_cpu_dry_run_measures_and_its_json_renders_into_the_docs(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = tmp_path / "check"
    done = subprocess.run(
        ["bash", "tools/gpu_check.sh", "--cpu-dry-run", "--only", "omp", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "== omp: budget 120s" in done.stdout
    results = json.loads((out / "gpu_check.json").read_text())
    assert results["steps"][0]["step"] == "omp" and results["steps"][0]["exit"] == 0
    peers = {row["implementation"] for row in results["omp"]}
    assert peers == {"laser batch_omp (auto)", "eager Batch-OMP", "research repository Batch-OMP"}
    assert all(row["support_agreement"] == 1 for row in results["omp"] if "laser_speedup" in row)
    page = tmp_path / "benchmarks.md"
    subprocess.run(
        [sys.executable, "tools/gpu_report.py", str(out / "gpu_check.json"), "--doc", str(page)],
        cwd=REPO,
        check=True,
    )
    text = page.read_text()
    assert "| 256x16x64x4 | research repository Batch-OMP |" in text
    assert "### vqgan\n\nnot measured in this run" in text


def test_a_missing_wheel_folder_is_named_with_what_it_lacks(tmp_path):
    bare = tmp_path / "bare"  # a Python with pip and nothing else installed
    subprocess.run([sys.executable, "-m", "venv", str(bare)], check=True)
    done = subprocess.run(
        [str(bare / "bin" / "python"), str(REPO / "tools" / "gpu_wheels.py"), "check", "nowhere"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "nowhere (which does not exist) lacks" in done.stdout
    for name in ("torch>=2.4 (no wheel", "pydantic>=2.6 (no wheel", "vector-quantize-pytorch"):
        assert f"  - {name}" in done.stdout, done.stdout
    assert "bash tools/gpu_wheels.sh nowhere" in done.stdout
