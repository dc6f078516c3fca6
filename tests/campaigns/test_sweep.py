"""laser sweep, in this process (the inline executor calls the `laser` entry point): status
table, finished runs skipped with their files untouched, --retry-failed, one failure not
stopping the others, the lock, a killed sweep repaired and its runs resumed exactly; then
laser compare on the result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from laser_core.campaigns.axes import Axis
from laser_core.campaigns.definition import from_arguments
from laser_core.campaigns.executors import InlineExecutor
from laser_core.campaigns.report import compare
from laser_core.campaigns.runner import run_sweep
from laser_core.cli.main import main
from laser_core.files import atomic_write_text
from laser_core.rundir.lock import DirectoryLock, DirectoryLocked
from tests.helpers import TINY_RECIPE


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def sweep_of(recipe: Path, axis: Axis, *overrides: str):
    return from_arguments(recipe, [axis], [], ["train.steps=2", *overrides])


def test_failures_do_not_stop_others_finished_runs_are_skipped_untouched(write_recipe, tmp_path):
    recipe = write_recipe(TINY_RECIPE)
    # 128 is more than the 64 training patches: that run fails when training starts
    sweep = sweep_of(recipe, Axis("data.batch_size", ("128", "8", "4")))
    result = run_sweep(sweep, tmp_path / "s", executor=InlineExecutor(main))
    failed, done = result.table.runs["batch_size=128"], result.table.runs["batch_size=8"]
    assert (failed.state, done.state) == ("failed", "done")
    assert "fewer than one batch of 128" in failed.error
    status = json.loads((tmp_path / "s/status.json").read_text())["runs"]
    assert status["batch_size=128"]["state"] == "failed"
    assert "| batch_size=8 | done |" in (tmp_path / "s/status.md").read_text()

    before = snapshot(tmp_path / "s/runs/batch_size=8")
    failed_log = (tmp_path / "s/logs/batch_size=128.log").read_text()
    again = run_sweep(sweep, tmp_path / "s", executor=InlineExecutor(main))
    assert again.skipped == ["batch_size=8", "batch_size=4"] and again.ran == []
    assert (tmp_path / "s/logs/batch_size=128.log").read_text() == failed_log
    retried = run_sweep(sweep, tmp_path / "s", retry_failed=True, executor=InlineExecutor(main))
    assert retried.ran == ["batch_size=128"]
    assert (tmp_path / "s/logs/batch_size=128.log").read_text().count("error: ") == 2
    assert snapshot(tmp_path / "s/runs/batch_size=8") == before

    comparison = compare([tmp_path / "s"], tmp_path / "cmp")
    (row,) = [r for r in comparison.table.rows if r["run"] == "batch_size=8"]
    assert comparison.table.columns[:3] == ["run", "state", "data.batch_size"]
    assert (
        row["psnr"]
        == json.loads((tmp_path / "s/runs/batch_size=8/metrics.json").read_text())["psnr"]
    )
    assert [r["state"] for r in comparison.table.rows] == ["done", "done"]  # 128 wrote nothing
    psnr = [r["psnr"] for r in comparison.table.rows]
    assert psnr == sorted(psnr, reverse=True)
    assert (tmp_path / "cmp/table.csv").read_text().startswith("run,state,data.batch_size,step")
    assert (tmp_path / "cmp/curves/val-psnr.png").is_file()
    report = (tmp_path / "cmp/report.html").read_text()
    assert report.count("data:image/png") == len(list((tmp_path / "cmp/curves").glob("*"))) + 2
    assert "batch_size=4 (step-0000002)" in report


def test_a_second_sweep_on_the_same_directory_is_refused(write_recipe, tmp_path):
    sweep = sweep_of(write_recipe(TINY_RECIPE), Axis("seed", ("0", "1")))
    refused = pytest.raises(DirectoryLocked, match="in use by another sweep")
    with DirectoryLock(tmp_path / "s"), refused:
        run_sweep(sweep, tmp_path / "s", executor=InlineExecutor(main))
    assert not (tmp_path / "s/status.json").exists()


def test_another_sweep_in_a_used_directory_is_refused(write_recipe, tmp_path):
    recipe = write_recipe(TINY_RECIPE)
    run_sweep(
        sweep_of(recipe, Axis("seed", ("0", "1")), "train.steps=0"),
        tmp_path / "s",
        executor=InlineExecutor(main),
    )
    with pytest.raises(Exception, match="holds another sweep"):
        run_sweep(
            sweep_of(recipe, Axis("seed", ("0", "2"))),
            tmp_path / "s",
            executor=InlineExecutor(main),
        )


def test_a_killed_sweep_is_repaired_and_its_runs_resume_exactly(write_recipe, tmp_path):
    """What SIGKILL leaves: 'running' in the table, one run complete, one with only an early
    checkpoint and log lines past it, one killed before its first checkpoint."""
    recipe = write_recipe(TINY_RECIPE)
    sweep = sweep_of(
        recipe, Axis("seed", ("0", "1", "2")), "train.steps=4", "train.checkpoint_every=2"
    )
    runs = tmp_path / "s/runs"
    result = run_sweep(sweep, tmp_path / "s", executor=InlineExecutor(main))
    uninterrupted = json.loads((runs / "seed=1/metrics.json").read_text())
    complete = snapshot(runs / "seed=0")
    for name in ("seed=1", "seed=2"):
        (runs / name / "model.safetensors").unlink()
        (runs / name / "metrics.json").unlink()
    for stale in (runs / "seed=1/checkpoints").glob("step-0000004"):
        stale.rename(stale.with_name(".partial-step-0000004"))  # the save SIGKILL cut short
    for checkpoint in (runs / "seed=2/checkpoints").glob("step-*"):
        checkpoint.rename(checkpoint.with_name(f".partial-{checkpoint.name}"))
    table = json.loads((tmp_path / "s/status.json").read_text())
    for name in table["runs"]:
        table["runs"][name]["state"] = "running"
    atomic_write_text(tmp_path / "s/status.json", json.dumps(table))
    kept = (runs / "seed=1/checkpoints/step-0000002/trainer.json").stat().st_mtime_ns
    midway = compare([tmp_path / "s"], tmp_path / "midway")
    states = {row["run"]: (row["state"], row["step"]) for row in midway.table.rows}
    assert states == {"seed=0": ("done", 4), "seed=1": ("training", 4), "seed=2": ("training", 4)}
    assert (
        "Not finished (latest validation shown): seed=1, seed=2"
        in (tmp_path / "midway/report.html").read_text()
    )

    result = run_sweep(sweep, tmp_path / "s", executor=InlineExecutor(main))
    assert result.skipped == ["seed=0"] and result.ran == ["seed=1", "seed=2"]
    assert {r.state for r in result.table.runs.values()} == {"done"}
    assert snapshot(runs / "seed=0") == complete
    assert json.loads((runs / "seed=1/metrics.json").read_text()) == uninterrupted
    resumed_from = runs / "seed=1/checkpoints/step-0000002/trainer.json"
    assert resumed_from.stat().st_mtime_ns == kept  # resumed, not started over
    train_steps = [
        r["step"]
        for r in map(json.loads, (runs / "seed=1/metrics.jsonl").read_text().splitlines())
        if r["split"] == "train"
    ]
    assert train_steps == [1, 2, 3, 4]
