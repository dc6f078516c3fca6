"""The executors on real processes: two local jobs at once, the sweep SIGKILLed mid-run and
repaired by the rerun; submitit's local executor; the sbatch file submitit writes for SLURM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from laser_core.campaigns.axes import Axis
from laser_core.campaigns.definition import ExecutorConfig, from_arguments
from laser_core.campaigns.executors import InlineExecutor, SubmititExecutor
from laser_core.campaigns.jobs import Job, command
from laser_core.campaigns.runner import run_sweep
from laser_core.cli.main import main
from laser_core.rundir.lock import DirectoryLocked
from tests.helpers import TINY_RECIPE


def status(sweep_dir: Path) -> dict:
    path = sweep_dir / "status.json"
    return json.loads(path.read_text())["runs"] if path.exists() else {}


@pytest.mark.slow
def test_two_local_jobs_then_sigkill_then_the_rerun_repairs_and_resumes(write_recipe, tmp_path):
    recipe = write_recipe(TINY_RECIPE)
    overrides = ["train.steps=80", "train.checkpoint_every=10", "train.log_every=5"]
    sweep_dir = tmp_path / "s"
    argv = [
        sys.executable,
        "-m",
        "laser_core.cli",
        "sweep",
        str(recipe),
        "seed=0,1",
        *overrides,
        "--sweep-dir",
        str(sweep_dir),
        "--jobs",
        "2",
    ]
    sweep = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    runs = [sweep_dir / "runs/seed=0", sweep_dir / "runs/seed=1"]
    deadline = time.time() + 120
    while not all(any((r / "checkpoints").glob("step-*")) for r in runs):
        assert sweep.poll() is None and time.time() < deadline, sweep.stderr.read().decode()
        time.sleep(0.2)
    assert {s["state"] for s in status(sweep_dir).values()} == {"running"}  # both at once
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()

    # the jobs got SIGINT from the kernel and are saving a checkpoint; they hold the lock
    plan = from_arguments(recipe, [Axis("seed", ("0", "1"))], [], overrides)
    while True:
        try:
            result = run_sweep(plan, sweep_dir, executor=InlineExecutor(main))
            break
        except DirectoryLocked:
            assert time.time() < deadline
            time.sleep(0.2)
    assert result.ran  # on an idle machine one run may finish before the kill
    assert {s["state"] for s in status(sweep_dir).values()} == {"done"}
    for seed, run in enumerate(runs):
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        steps = [r["step"] for r in records if r["split"] == "train"]
        assert steps == list(range(5, 81, 5))  # resumed: no step lost, none twice
        assert f"seed: {seed}" in (run / "recipe.yaml").read_text()
        log = (sweep_dir / "logs" / f"seed={seed}.log").read_text()
        assert (f"laser run --resume {run}\n" in log) == (f"seed={seed}" in result.ran)


@pytest.mark.slow
def test_submitit_runs_a_sweep_on_its_local_executor(write_recipe, tmp_path):
    recipe = write_recipe(TINY_RECIPE)
    plan = from_arguments(recipe, [], [], ["train.steps=2"], name="submitit", cluster="local")
    result = run_sweep(plan, tmp_path / "s")
    (run,) = result.table.runs.values()
    assert run.state == "done" and run.job_id
    assert (tmp_path / "s/runs/run/model.safetensors").is_file()
    assert list((tmp_path / "s/submitit").glob(f"{run.job_id}*"))


def test_submitit_writes_the_slurm_settings_into_the_sbatch_file(tmp_path, monkeypatch):
    """A stand-in `sbatch` records what submitit submits; nothing else of SLURM is needed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\necho 'Submitted batch job 4242'\n")
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = ExecutorConfig(
        name="submitit",
        jobs=2,
        gpus_per_job=4,
        partition="gpu",
        account="proj7",
        time_min=120,
        cpus_per_job=16,
        mem_gb=64,
        setup=["module load cuda"],
    )
    jobs = [
        Job(f"r{i}", tmp_path / f"r{i}", ("run", "x.yaml"), tmp_path / f"r{i}.log")
        for i in range(3)
    ]
    handles = SubmititExecutor(config, tmp_path / "submitit").submit(jobs)
    assert [h.job_id for h in handles] == ["4242_0", "4242_1", "4242_2"]
    sbatch = handles[0].paths.submission_file.read_text()
    for line in (
        "--partition=gpu",
        "--account=proj7",
        "--gpus-per-node=4",
        "--time=120",
        "--cpus-per-task=16",
        "--mem=64GB",
        "--array=0-2%2",
        "--ntasks-per-node=1",
    ):
        assert f"#SBATCH {line}\n" in sbatch
    assert "module load cuda\n" in sbatch
    launch = command(("run", "x.yaml"), 4)
    assert launch[1:5] == ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes"]
    assert launch[5:8] == ["4", "-m", "laser_core.cli"]
