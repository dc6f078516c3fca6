"""A sweep's unit of work: one ``laser run`` (fresh or ``--resume``) and how to launch it as a
process, the same for every executor."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Job:
    name: str
    run_dir: Path
    argv: tuple[str, ...]  # arguments of the laser command, e.g. ("run", "--resume", DIR)
    log: Path


@dataclass(frozen=True)
class Outcome:
    """How a job ended: exit code, and the error line ``laser`` printed on failure."""

    returncode: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def command(argv: tuple[str, ...], gpus: int) -> list[str]:
    """``python -m laser_core.cli ARGV``; through ``accelerate launch`` for several GPUs."""
    if gpus > 1:
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
        return [*launch, "--num_processes", str(gpus), "-m", "laser_core.cli", *argv]
    return [sys.executable, "-m", "laser_core.cli", *argv]


def outcome_from_log(returncode: int, log: Path) -> Outcome:
    """The last ``error:`` line of the job's log (or its last line) as the failure reason."""
    if returncode == 0:
        return Outcome(0)
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    if errors:
        # a recipe error continues on indented lines
        first = errors[-1]
        rest = [line.strip() for line in lines[first + 1 :] if line.startswith("  ")]
        reason = " ".join([lines[first].removeprefix("error: "), *rest])
    else:
        reason = (lines[-1] if lines else "no output") + f" (exit code {returncode})"
    return Outcome(returncode, reason[:500])


def start_log(job: Job) -> None:
    """A line per attempt in the job's log, saying what ran: a fresh run or a resume."""
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with open(job.log, "a") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} laser {shlex.join(job.argv)}\n")


def run_job(job: Job, gpus: int) -> Outcome:
    """Run one job to completion in a child process, output appended to its log; what a
    SLURM job executes (pickled by submitit)."""
    start_log(job)
    with open(job.log, "ab") as log:
        returncode = subprocess.call(
            command(job.argv, gpus), stdout=log, stderr=subprocess.STDOUT, env=job_env()
        )
    return outcome_from_log(returncode, job.log)


def job_env(devices: list[str] | None = None, threads: int | None = None) -> dict[str, str]:
    """The job's environment: its GPUs, or its share of the CPU's threads when several jobs
    share it (unless OMP_NUM_THREADS is set), so that they do not oversubscribe the cores."""
    # a progress line every 10 s, not 10 a second, in the log
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_MININTERVAL": "10"}
    if devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    if threads is not None:
        env.setdefault("OMP_NUM_THREADS", str(threads))
    return env
