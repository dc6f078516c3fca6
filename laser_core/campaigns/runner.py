"""``laser sweep``: validate every combination, take the lock, repair the status table, then
hand the runs that need it to an executor. Finished runs are skipped with their files
untouched, interrupted ones resume from their checkpoint, failed ones rerun only when asked."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from laser_core.campaigns.definition import PlannedRun, Sweep
from laser_core.campaigns.jobs import Job, Outcome
from laser_core.campaigns.status import RunStatus, StatusTable, can_resume, is_finished
from laser_core.errors import LaserError
from laser_core.rundir.lock import DirectoryLock

DEFINITION = "sweep.yaml"
SWEEP_HOLDER = "another sweep (or jobs it left finishing their step)"


@dataclass
class SweepResult:
    table: StatusTable
    skipped: list[str]  # done before this command
    ran: list[str]


def run_sweep(
    sweep: Sweep,
    sweep_dir: str | os.PathLike[str],
    retry_failed: bool = False,
    executor=None,
    on_change: Callable[[RunStatus], None] | None = None,
) -> SweepResult:
    """Run ``sweep`` in ``sweep_dir``; ``executor`` defaults to the sweep's own settings;
    ``on_change`` hears of every run that starts or ends."""
    from laser_core.campaigns.executors import make_executor

    sweep_dir = Path(sweep_dir)
    planned = sweep.validate()
    with DirectoryLock(sweep_dir, SWEEP_HOLDER) as lock:
        _keep_definition(sweep, sweep_dir)
        table = StatusTable.load(sweep_dir, planned)
        table.repair()
        skipped = [name for name, s in table.runs.items() if s.state == "done"]
        wanted = {"pending", "failed"} if retry_failed else {"pending"}
        jobs = [_job(run, table) for run in planned if table.runs[run.name].state in wanted]
        executor = executor or make_executor(sweep.executor, sweep_dir, (lock.fd,))
        executor.run(jobs, _Recorder(table, on_change or (lambda status: None)))
    return SweepResult(table, skipped, [job.name for job in jobs])


def load_definition(sweep_dir: Path) -> Path:
    path = sweep_dir / DEFINITION
    if not path.is_file():
        raise LaserError(f"{sweep_dir} holds no sweep ({DEFINITION} is missing); give a recipe")
    return path


def _keep_definition(sweep: Sweep, sweep_dir: Path) -> None:
    """Write the definition on the first run; refuse a different sweep in the same folder,
    whose run names would mean other runs."""
    from laser_core.files import atomic_write_text

    path = sweep_dir / DEFINITION
    wanted = sweep.to_file()
    if path.exists():
        stored = yaml.safe_load(path.read_text())
        if {k: v for k, v in stored.items() if k != "executor"} != {
            k: v for k, v in wanted.items() if k != "executor"
        }:
            raise LaserError(
                f"{sweep_dir} holds another sweep (its {DEFINITION} differs from this one); "
                "use a new --sweep-dir, or rerun it with `laser sweep --sweep-dir "
                f"{sweep_dir}`"
            )
    header = "# the sweep this directory holds; `laser sweep --sweep-dir DIR` reruns it\n"
    atomic_write_text(path, header + yaml.safe_dump(wanted, sort_keys=False))


def _job(run: PlannedRun, table: StatusTable) -> Job:
    """Resume from a checkpoint; without one, start over (a run killed before its first
    checkpoint holds nothing worth keeping)."""
    run_dir = table.run_dir(run.name)
    log = table.sweep_dir / "logs" / f"{run.name}.log"
    if can_resume(run_dir) and not is_finished(run_dir):
        return Job(run.name, run_dir, ("run", "--resume", str(run_dir)), log)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    argv = ("run", str(run.recipe), *run.overrides, "--run-dir", str(run_dir))
    return Job(run.name, run_dir, argv, log)


class _Recorder:
    """Executor events into the status table, each change saved atomically."""

    def __init__(self, table: StatusTable, on_change: Callable[[RunStatus], None]):
        self.table, self.on_change = table, on_change

    def started(self, job: Job, job_id: str | None) -> None:
        self.table.set(job.name, "running", job_id=job_id, started=time.time(), error=None)
        self.on_change(self.table.runs[job.name])

    def finished(self, job: Job, outcome: Outcome) -> None:
        status = self.table.runs[job.name]
        seconds = time.time() - status.started if status.started else None
        if outcome.ok and is_finished(job.run_dir):
            self.table.set(job.name, "done", seconds=seconds, note=None)
        elif outcome.error in {"interrupted", "cancelled"}:
            self.table.set(job.name, "pending", seconds=seconds, note=outcome.error)
        else:
            error = outcome.error or "exited without a model.safetensors"
            self.table.set(job.name, "failed", seconds=seconds, error=error)
        self.on_change(status)
