"""The sweep's status table: each run pending, running, done or failed (with its error),
kept in ``DIR/status.json`` and mirrored as ``DIR/status.md``, both written atomically after
every change, so a reader never sees half a table and a crash loses no finished run."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from laser_core.campaigns.definition import PlannedRun
from laser_core.files import atomic_write_text
from laser_core.rundir import checkpoint
from laser_core.rundir.layout import RunDir

State = Literal["pending", "running", "done", "failed"]
STATES: tuple[State, ...] = ("pending", "running", "done", "failed")


@dataclass
class RunStatus:
    name: str
    recipe: str
    overrides: list[str]
    state: State = "pending"
    error: str | None = None
    job_id: str | None = None
    started: float | None = None
    seconds: float | None = None  # wall time of the last attempt, process start included
    note: str | None = None


@dataclass
class StatusTable:
    sweep_dir: Path
    runs: dict[str, RunStatus] = field(default_factory=dict)

    @property
    def json_path(self) -> Path:
        return self.sweep_dir / "status.json"

    @classmethod
    def load(cls, sweep_dir: Path, planned: list[PlannedRun]) -> StatusTable:
        """The stored table, with every planned run present (new ones pending)."""
        stored: dict[str, dict] = {}
        path = sweep_dir / "status.json"
        if path.exists():
            stored = json.loads(path.read_text())["runs"]
        table = cls(sweep_dir)
        for run in planned:
            if run.name in stored:
                table.runs[run.name] = RunStatus(**stored[run.name])
            else:
                table.runs[run.name] = RunStatus(run.name, str(run.recipe), list(run.overrides))
        return table

    def run_dir(self, name: str) -> Path:
        return self.sweep_dir / "runs" / name

    def repair(self) -> None:
        """After a crash or SIGKILL of an earlier sweep, 'running' is stale (we hold the lock):
        a run whose files are complete is done, any other goes back to pending."""
        for status in self.runs.values():
            finished = is_finished(self.run_dir(status.name))
            if status.state == "running" or (status.state != "done" and finished):
                status.state = "done" if finished else "pending"
                status.note = "repaired after an interrupted sweep"
            elif status.state == "done" and not finished:
                status.state, status.note = "pending", "files of a done run were missing"
        self.save()

    def set(self, name: str, state: State, **fields) -> None:
        status = self.runs[name]
        status.state = state
        for key, value in fields.items():
            setattr(status, key, value)
        self.save()

    def counts(self) -> dict[str, int]:
        return {s: sum(r.state == s for r in self.runs.values()) for s in STATES}

    def save(self) -> None:
        data = {"updated": time.time(), "runs": {n: asdict(r) for n, r in self.runs.items()}}
        atomic_write_text(self.json_path, json.dumps(data, indent=2) + "\n")
        atomic_write_text(self.sweep_dir / "status.md", self.markdown())

    def markdown(self) -> str:
        lines = ["| run | state | seconds | error |", "| --- | --- | ---: | --- |"]
        for r in self.runs.values():
            seconds = f"{r.seconds:.1f}" if r.seconds is not None else ""
            error = (r.error or r.note or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {r.name} | {r.state} | {seconds} | {error} |")
        return "\n".join(lines) + "\n"


def is_finished(run_dir: Path) -> bool:
    """``train`` writes metrics.json, then the last checkpoint, then the weights: both files
    mean the run completed."""
    files = RunDir(run_dir)
    return files.metrics_json.is_file() and files.model_safetensors.is_file()


def can_resume(run_dir: Path) -> bool:
    return checkpoint.latest(run_dir) is not None
