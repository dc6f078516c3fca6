"""Executors run a sweep's jobs and report each start and end; they are existing engines,
not a scheduler: child processes N at a time (``local``) or SLURM jobs through submitit.

``Events`` is how the sweep hears back: ``started(job, job_id)`` and ``finished(job, outcome)``,
called from the sweep's own thread, so the status table needs no locking.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from laser_core.campaigns.definition import ExecutorConfig
from laser_core.campaigns.jobs import (
    Job,
    Outcome,
    command,
    job_env,
    outcome_from_log,
    run_job,
    start_log,
)
from laser_core.errors import LaserError


class Events(Protocol):
    def started(self, job: Job, job_id: str | None) -> None: ...

    def finished(self, job: Job, outcome: Outcome) -> None: ...


class SweepInterrupted(LaserError):
    """Ctrl-C: the jobs under way stopped at a step boundary with a checkpoint."""


class LocalExecutor:
    """Child processes, ``jobs`` at a time. With GPUs, each slot owns ``gpus_per_job`` of the
    visible devices through ``CUDA_VISIBLE_DEVICES``; several per job go through ``accelerate
    launch``. Children run in their own session, so Ctrl-C reaches them once, forwarded by the
    sweep, and stop at a step boundary; if the sweep dies, Linux sends them SIGINT too."""

    def __init__(self, config: ExecutorConfig, keep_fds: tuple[int, ...] = ()):
        self.config = config
        self.keep_fds = keep_fds
        self.slots = _device_slots(config)
        self.threads = max(1, (os.cpu_count() or 1) // len(self.slots))

    def run(self, jobs: list[Job], events: Events) -> None:
        waiting = list(jobs)
        running: dict[int, tuple[Job, subprocess.Popen, object]] = {}
        try:
            while waiting or running:
                for slot in range(len(self.slots)):
                    if slot not in running and waiting:
                        job = waiting.pop(0)
                        running[slot] = (job, *self._start(job, self.slots[slot]))
                        events.started(job, str(running[slot][1].pid))
                for slot, (job, process, log) in list(running.items()):
                    if process.poll() is not None:
                        log.close()
                        del running[slot]
                        events.finished(job, outcome_from_log(process.returncode, job.log))
                time.sleep(0.05)
        except KeyboardInterrupt:
            self._stop(running, events)
            raise SweepInterrupted(
                "sweep interrupted: the runs under way saved a checkpoint; rerun the same "
                "command to resume them"
            ) from None

    def _start(self, job: Job, devices: list[str] | None) -> tuple[subprocess.Popen, object]:
        start_log(job)
        log = open(job.log, "ab")  # noqa: SIM115 (closed when the job ends)
        process = subprocess.Popen(
            command(job.argv, self.config.gpus_per_job),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=job_env(devices, None if devices else self.threads),
            start_new_session=True,
            pass_fds=self.keep_fds,
            preexec_fn=_interrupt_when_parent_dies,
        )
        return process, log

    def _stop(self, running: dict, events: Events) -> None:
        """Forward one SIGINT (the step finishes, a checkpoint is saved); a second Ctrl-C
        forwards another, which makes the jobs quit at once."""
        for _, process, _ in running.values():
            process.send_signal(signal.SIGINT)
        for job, process, log in running.values():
            while True:
                try:
                    process.wait()
                    break
                except KeyboardInterrupt:
                    for _, other, _ in running.values():
                        with contextlib.suppress(ProcessLookupError):
                            other.send_signal(signal.SIGINT)
            log.close()
            events.finished(job, Outcome(-signal.SIGINT, "interrupted"))


class InlineExecutor:
    """Runs each job in this process, one after another, through a ``laser`` entry point
    (``laser_core.cli.main.main``, given by the caller): no process start, so the tests of
    sweep logic stay fast."""

    def __init__(self, main: Callable[[list[str]], int]):
        self.main = main

    def run(self, jobs: list[Job], events: Events) -> None:
        main = self.main
        for job in jobs:
            events.started(job, None)
            start_log(job)
            stream = io.StringIO()
            with contextlib.redirect_stderr(stream), contextlib.redirect_stdout(stream):
                returncode = main(list(job.argv))
            with open(job.log, "a") as log:
                log.write(stream.getvalue())
            events.finished(job, outcome_from_log(returncode, job.log))


class SubmititExecutor:
    """Submits the jobs as one SLURM job array through submitit (partition, account, time
    limit, GPUs and CPUs per job from the sweep file), or to submitit's local executor, and
    waits for them. A job with several GPUs runs ``accelerate launch`` inside the allocation."""

    def __init__(self, config: ExecutorConfig, folder: Path):
        try:
            import submitit
        except ModuleNotFoundError:
            raise LaserError(
                "the submitit executor needs submitit: pip install 'laser[slurm]'"
            ) from None

        cluster = config.cluster or ("slurm" if shutil.which("sbatch") else "local")
        self.executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
        parameters = {"timeout_min": config.time_min, "tasks_per_node": 1, "nodes": 1}
        if config.gpus_per_job:
            parameters["gpus_per_node"] = config.gpus_per_job
        if config.cpus_per_job:
            parameters["cpus_per_task"] = config.cpus_per_job
        if config.mem_gb:
            parameters["mem_gb"] = config.mem_gb
        if cluster == "slurm":
            parameters |= {"slurm_array_parallelism": config.jobs, "slurm_setup": config.setup}
            if config.partition:
                parameters["slurm_partition"] = config.partition
            if config.account:
                parameters["slurm_account"] = config.account
        self.executor.update_parameters(name="laser-sweep", **parameters)
        self.gpus = config.gpus_per_job

    def submit(self, jobs: list[Job]) -> list:
        """One array job; returns submitit's job handles in the order of ``jobs``."""
        return self.executor.map_array(run_job, jobs, [self.gpus] * len(jobs))

    def run(self, jobs: list[Job], events: Events) -> None:
        import submitit

        if not jobs:
            return
        handles = self.submit(jobs)
        by_id = {}
        for job, handle in zip(jobs, handles, strict=True):
            events.started(job, handle.job_id)
            by_id[handle.job_id] = job
        try:
            for handle in submitit.helpers.as_completed(handles, poll_frequency=1):
                job = by_id[handle.job_id]
                try:
                    outcome = handle.result()
                except Exception as error:  # the job died outside `laser` (time limit, node)
                    outcome = Outcome(1, f"job {handle.job_id} failed: {error}"[:500])
                events.finished(job, outcome)
        except KeyboardInterrupt:
            for handle in handles:
                if not handle.done():
                    handle.cancel(check=False)
                    events.finished(by_id[handle.job_id], Outcome(-signal.SIGINT, "cancelled"))
            raise SweepInterrupted(
                "sweep interrupted: pending jobs cancelled; rerun the same command to resume "
                "from their checkpoints"
            ) from None


def make_executor(config: ExecutorConfig, sweep_dir: Path, keep_fds: tuple[int, ...] = ()):
    if config.name == "submitit":
        return SubmititExecutor(config, sweep_dir / "submitit")
    return LocalExecutor(config, keep_fds)


def _device_slots(config: ExecutorConfig) -> list[list[str] | None]:
    """``jobs`` slots; on GPUs each gets its own ``gpus_per_job`` devices."""
    if not config.gpus_per_job:
        return [None] * config.jobs
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    devices = visible.split(",") if visible else [str(i) for i in range(_gpu_count())]
    per = config.gpus_per_job
    slots = [devices[i : i + per] for i in range(0, len(devices) - per + 1, per)][: config.jobs]
    if not slots:
        raise LaserError(
            f"executor.gpus_per_job is {per} but {len(devices)} GPUs are visible; "
            "lower it, or set CUDA_VISIBLE_DEVICES"
        )
    return slots


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def _interrupt_when_parent_dies() -> None:
    """Linux: deliver SIGINT to the job if the sweep is killed, so it checkpoints and stops
    rather than training on unattended."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
