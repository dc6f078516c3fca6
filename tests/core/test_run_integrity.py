"""A run directory can be trusted: every file of a run and of a checkpoint, flipped or
truncated, is refused by name or skipped for an intact checkpoint; metrics.jsonl holds each
(step, split) once; resumes accept only changes that keep shapes and data, and record them;
dead ends (no checkpoint yet, a file as --run-dir, a run still training) say what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from laser_core.cli.main import main
from laser_core.recipes.model import load_recipe
from laser_core.rundir import manifest, resume
from laser_core.rundir.layout import RunDir
from laser_core.training.train import TrainingDiverged, train, warmup_cosine
from tests.helpers import TINY_RECIPE, logged

pytestmark = pytest.mark.slow

# eval_every divides steps: the final validation is due in the loop and after it
OVERRIDES = ["train.steps=4", "train.checkpoint_every=2", "train.eval_every=2"]
RUN_FILES = (
    *("recipe.yaml", "plugins.json", "run.json", "metrics.json", "model.safetensors"),
    "manifest.json",
)
CHECKPOINT_FILES = (
    *("model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl"),
    *("trainer.json", "manifest.json"),
)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("finished")
    (folder / "tiny.yaml").write_text(TINY_RECIPE)
    return train(load_recipe(folder / "tiny.yaml", OVERRIDES), folder / "run").run_dir


@pytest.fixture
def run_dir(finished, tmp_path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "run"))


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    middle = len(data) // 2
    if how == "flip":
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    else:
        path.write_bytes(data[:middle])


def laser(capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main([*map(str, args)])
    return code, capsys.readouterr().err


def pairs(run_dir: Path) -> list[tuple[int, str]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r["split"]) for r in map(json.loads, lines)]


def same_tensors(a: Path, b: Path) -> bool:
    first, second = load_file(str(a)), load_file(str(b))
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_each_step_and_split_is_logged_once_even_when_a_finished_run_resumes(
    run_dir, finished, capsys
):
    assert pairs(finished) == [
        *[(0, "val"), (1, "train"), (2, "train"), (2, "val")],
        *[(3, "train"), (4, "train"), (4, "val")],
    ]
    assert laser(capsys, "run", "--resume", run_dir)[0] == 0
    assert laser(capsys, "run", "--resume", run_dir)[0] == 0
    assert logged(run_dir) == logged(finished)
    assert same_tensors(run_dir / "model.safetensors", finished / "model.safetensors")


@pytest.mark.parametrize("how", ["flip", "truncate"])
@pytest.mark.parametrize("name", RUN_FILES)
def test_a_damaged_run_file_is_refused_by_name(run_dir, capsys, name, how):
    damage(run_dir / name, how)
    code, err = laser(capsys, "eval", run_dir)
    assert code == 1 and str(run_dir / name) in err and "Traceback" not in err, err
    if name in resume.FINAL:  # resuming writes the final files again
        assert "laser run --resume" in err
        assert laser(capsys, "run", "--resume", run_dir)[0] == 0
        assert laser(capsys, "eval", run_dir)[0] == 0


@pytest.mark.parametrize(
    "command",
    [
        ["export", "RUN", "--out", "EXPORT"],
        ["task", "RUN", "task.name=classify"],
        ["compress", "RUN", "image.png", "-o", "out.lsr"],
    ],
    ids=lambda c: c[0],
)
def test_every_command_that_reads_a_run_verifies_it(run_dir, tmp_path, capsys, command):
    damage(run_dir / "model.safetensors", "flip")
    args = [
        str(run_dir) if a == "RUN" else str(tmp_path / a) if a == "EXPORT" else a for a in command
    ]
    code, err = laser(capsys, *args)
    assert code == 1 and str(run_dir / "model.safetensors") in err and "sha256" in err, err


def test_pictures_are_not_read_so_a_damaged_one_changes_nothing(run_dir, capsys):
    for picture in (run_dir / "reconstructions").iterdir():
        damage(picture, "flip")
    assert laser(capsys, "eval", run_dir)[0] == 0


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory) -> Path:
    """A run with a checkpoint at each of its 7 steps: one per checkpoint file to damage."""
    folder = tmp_path_factory.mktemp("checkpointed")
    (folder / "tiny.yaml").write_text(TINY_RECIPE)
    overrides = ["train.steps=7", "train.checkpoint_every=1", "train.keep_checkpoints=7"]
    return train(load_recipe(folder / "tiny.yaml", overrides), folder / "run").run_dir


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_resume_skips_damaged_checkpoints_for_the_newest_intact_one(
    checkpointed, tmp_path, capsys, caplog, how
):
    run_dir = Path(shutil.copytree(checkpointed, tmp_path / "run"))
    # a different file of each checkpoint from the newest down; step 1 stays intact
    damaged = [
        run_dir / "checkpoints" / f"step-{step:07d}" / name
        for step, name in zip(range(7, 1, -1), CHECKPOINT_FILES, strict=True)
    ]
    for path in damaged:
        damage(path, how)
    code, err = laser(capsys, "run", "--resume", run_dir)
    assert code == 0, err
    for path in damaged:
        assert f"skipped a damaged checkpoint: {path}" in caplog.text
    assert f"resuming from {run_dir / 'checkpoints' / 'step-0000001'}" in caplog.text
    # steps 2 to 7 trained again from step 1: the same numbers as the uninterrupted run
    assert logged(run_dir) == logged(checkpointed)
    assert same_tensors(run_dir / "model.safetensors", checkpointed / "model.safetensors")
    assert all(manifest.verify(path.parent) for path in damaged)  # saved again, intact


def test_resume_with_every_checkpoint_damaged_lists_them_and_says_how_to_start_over(
    run_dir, capsys
):
    for step in ("step-0000002", "step-0000004"):
        damage(run_dir / "checkpoints" / step / "optimizer.bin", "flip")
    code, err = laser(capsys, "run", "--resume", run_dir)
    assert code == 1 and err.count("optimizer.bin is damaged") == 2, err
    assert f"--run-dir {run_dir}" in err


def test_the_divergence_message_names_an_intact_checkpoint(run_dir):
    damage(run_dir / "checkpoints" / "step-0000004" / "optimizer.bin", "flip")
    overrides = ["train.steps=10", "train.lr=1e30", "train.grad_clip=null"]
    recipe = load_recipe(run_dir / "recipe.yaml", overrides)
    with pytest.raises(TrainingDiverged) as caught:
        train(recipe, run_dir, resume=True)  # from step 2; diverges before saving step 4
    assert "at step 4;" in str(caught.value)
    assert "step-0000002" in str(caught.value) and "step-0000004" not in str(caught.value)


def test_a_torn_last_metrics_line_is_dropped_with_a_warning(run_dir, finished, capsys, caplog):
    with open(run_dir / "metrics.jsonl", "a") as stream:
        stream.write('{"step": 5, "split": "tr')
    assert laser(capsys, "run", "--resume", run_dir)[0] == 0
    assert "torn by a kill" in caplog.text
    assert logged(run_dir) == logged(finished)


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_a_damaged_metrics_log_is_refused_by_line_or_loses_only_what_was_cut(
    run_dir, capsys, caplog, how
):
    log = run_dir / "metrics.jsonl"
    line = log.read_bytes()[: log.stat().st_size // 2].count(b"\n") + 1
    damage(log, how)
    code, err = laser(capsys, "run", "--resume", run_dir)
    if how == "flip":
        assert code == 1 and f"{log}:{line} is damaged" in err, err
    else:  # the cut line is torn: dropped, the rest kept, the run resumes
        assert code == 0 and "torn by a kill" in caplog.text
        assert len(set(pairs(run_dir))) == len(pairs(run_dir))


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_a_damaged_resume_record_is_refused_by_name(run_dir, capsys, how):
    recipe = load_recipe(run_dir / "recipe.yaml", ["train.steps=6"])
    shape = resume.recorded_images(run_dir)
    resume.record(run_dir, recipe, 4, {"train.steps": [4, 6]}, shape)  # run.json, as resumed
    damage(run_dir / RunDir.RUN_INFO, how)
    code, err = laser(capsys, "run", "--resume", run_dir)
    assert code == 1 and f"{run_dir / RunDir.RUN_INFO} is damaged" in err, err


def test_resume_refuses_fewer_steps_than_its_checkpoint(run_dir, capsys):
    code, err = laser(capsys, "run", "--resume", run_dir, "train.steps=2")
    assert code == 1 and "train.steps=2 is below step 4" in err, err


def test_resume_refuses_shape_and_data_changes_naming_each(run_dir, capsys):
    recipe = (run_dir / "recipe.yaml").read_text()
    changes = ["bottleneck.codebook_size=32", "data.batch_size=4", "encoder.latent_dim=8"]
    code, err = laser(capsys, "run", "--resume", run_dir, *changes, "train.steps=6")
    assert code == 1, err
    for change in changes:
        assert change.split("=")[0] + ": " in err
    assert "train.steps" not in err.split("A resume may change")[0]
    assert (run_dir / "recipe.yaml").read_text() == recipe


def test_resume_applies_and_records_allowed_changes(run_dir, capsys):
    code, err = laser(capsys, "run", "--resume", run_dir, "train.steps=6", "train.lr=0.001")
    assert code == 0, err
    recipe = load_recipe(run_dir / "recipe.yaml")
    assert (recipe.train.steps, recipe.train.lr) == (6, 0.001)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["resumes"] == [
        {
            "step": 4,
            "time": info["resumes"][0]["time"],
            "changed": {"train.steps": [4, 6], "train.lr": [0.005, 0.001]},
        }
    ]
    logged = {r["step"]: r for r in map(json.loads, (run_dir / "metrics.jsonl").open())}
    assert logged[5]["lr"] == pytest.approx(0.001 * warmup_cosine(recipe.train)(5))
    assert sorted(set(pairs(run_dir))) == sorted(pairs(run_dir))
    assert laser(capsys, "eval", run_dir)[0] == 0


def test_eval_refuses_a_run_that_is_training_again(run_dir, capsys):
    recipe = load_recipe(run_dir / "recipe.yaml", ["train.steps=6"])
    shape = resume.recorded_images(run_dir)
    resume.record(run_dir, recipe, 4, {"train.steps": [4, 6]}, shape)  # what a resume does first
    code, err = laser(capsys, "eval", run_dir)
    assert code == 1 and "not a finished run" in err and f"--resume {run_dir}" in err, err


def test_a_run_killed_before_its_first_checkpoint_starts_over_with_run_dir(run_dir, capsys):
    shutil.rmtree(run_dir / "checkpoints")
    for name in resume.FINAL:
        (run_dir / name).unlink(missing_ok=True)  # coding tables: codecs only
    with open(run_dir / "metrics.jsonl", "a") as stream:
        stream.write('{"step": 99, "split": "train"}\n')
    code, err = laser(capsys, "run", "--resume", run_dir)
    assert code == 1 and f"--run-dir {run_dir}" in err, err
    code, err = laser(capsys, "run", run_dir / "recipe.yaml", "--run-dir", run_dir)
    assert code == 0, err
    assert (99, "train") not in pairs(run_dir) and len(set(pairs(run_dir))) == 7


def test_a_run_dir_that_is_a_file_or_holds_a_run_is_a_clear_error(run_dir, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    recipe = run_dir / "recipe.yaml"
    for args in (["run", recipe, "--run-dir", afile], ["run", "--resume", afile]):
        code, err = laser(capsys, *args)
        assert code == 1 and f"{afile} is a file" in err, err
    code, err = laser(capsys, "run", recipe, "--run-dir", run_dir)
    assert code == 1 and f"--resume {run_dir}" in err, err


def test_a_run_without_manifests_loads_unverified_and_still_refuses_damage(
    run_dir, finished, capsys, caplog
):
    for sums in run_dir.rglob("manifest.json"):
        sums.unlink()
    assert laser(capsys, "eval", run_dir)[0] == 0
    assert "unverified" in caplog.text
    damage(run_dir / "checkpoints" / "step-0000004" / "optimizer.bin", "truncate")
    assert laser(capsys, "run", "--resume", run_dir)[0] == 0  # falls back to step 2
    assert same_tensors(run_dir / "model.safetensors", finished / "model.safetensors")
    (run_dir / "manifest.json").unlink()  # the resume sealed the run: make it old again
    damage(run_dir / "model.safetensors", "truncate")
    code, err = laser(capsys, "eval", run_dir)
    assert code == 1 and f"{run_dir / 'model.safetensors'} cannot be read" in err, err
