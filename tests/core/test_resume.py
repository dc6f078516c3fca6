"""Exact resume as the README promises it: after a kill, a Ctrl-C or a second Ctrl-C, on one
process and on two, the resumed run's metrics.jsonl equals the uninterrupted run's line for
line (no step repeated or missing) and its final weights equal tensor for tensor. A crash in
the middle of writing any run file leaves the previous file whole, and the run resumes."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from PIL import Image
from safetensors.torch import load_file, save_file
from safetensors.torch import save as safetensors_bytes

from laser_core import cli
from laser_core.rundir import checkpoint, layout
from laser_core.rundir.lock import LOCK_FILE
from laser_core.training import train as training
from tests.core.stop_at_step import signal_after
from tests.helpers import TINY_RECIPE, logged, run_two_processes

pytestmark = pytest.mark.slow

# 56 patches / batch 8 = 7 micro-batches per epoch, two per step: epochs end mid-step, and
# validations (every 4) and checkpoints (every 3) fall on different steps. Residual codebooks
# keep EMA buffers; at every step quantize dropout draws on Python's RNG, and codes unused
# for one batch (64 per level, some always are) are revived from latents drawn on torch's.
# So a resume that lost either RNG state differs, and so does one whose data loader draws
# on torch's RNG when it starts mid-epoch (the checkpoint at step 3 is after micro-batch 6).
RECIPE = (
    TINY_RECIPE.replace("train_patches: 64", "train_patches: 56")
    .replace(
        "train: {steps: 6,",
        "train: {steps: 8, grad_accum: 2, eval_every: 4, checkpoint_every: 3, keep_checkpoints: 5,",
    )
    .replace(
        "{name: vq, codebook_size: 16}",
        "{name: rq, levels: 2, codebook_size: 64, quantize_dropout: 0.5, dead_code_after: 1}",
    )
)
assert "dead_code_after: 1" in RECIPE and "steps: 8" in RECIPE
STOP_AT_STEP = Path(__file__).with_name("stop_at_step.py")


def laser(*args: str) -> int:
    """`laser ARGS` in this process, its exit code."""
    return cli.main([str(a) for a in args])


def assert_same_run(resumed: Path, whole: Path) -> None:
    records = logged(resumed)
    keys = [(r["step"], r["split"]) for r in records]
    assert len(keys) == len(set(keys)), f"repeated lines in metrics.jsonl: {keys}"
    assert records == logged(whole)
    assert (resumed / "metrics.json").read_text() == (whole / "metrics.json").read_text()
    weights = load_file(resumed / "model.safetensors")
    reference = load_file(whole / "model.safetensors")
    assert weights.keys() == reference.keys()
    for key, tensor in reference.items():
        assert torch.equal(weights[key], tensor), key


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "recipe.yaml"
    path.write_text(RECIPE)
    return path


@pytest.fixture(scope="module")
def whole(recipe, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    assert laser("run", recipe, "--run-dir", run_dir) == 0
    return run_dir


def test_a_killed_run_resumes_to_the_uninterrupted_run(recipe, whole, tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, STOP_AT_STEP, "5", "KILL", "0", "--", "run", recipe]
    killed = subprocess.run([*command, "--run-dir", run_dir], capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert checkpoint.latest(run_dir) == checkpoint.path_for(run_dir, 3)
    logged = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").open()]
    assert max(logged) == 5  # lines past the checkpoint, which the resumed run must drop

    assert laser("run", "--resume", run_dir) == 0
    assert_same_run(run_dir, whole)


def test_ctrl_c_saves_the_step_it_finished_and_resumes_exactly(
    recipe, whole, tmp_path, monkeypatch, capsys
):
    run_dir = tmp_path / "run"
    monkeypatch.setattr(training._Loop, "_log_train", signal_after(5, ["INT"]))
    assert laser("run", recipe, "--run-dir", run_dir) == 1
    assert "interrupted at step 5;" in capsys.readouterr().err
    assert checkpoint.latest(run_dir) == checkpoint.path_for(run_dir, 5)
    assert not (run_dir / "model.safetensors").exists()

    monkeypatch.undo()
    assert laser("run", "--resume", run_dir) == 0
    assert_same_run(run_dir, whole)


def test_a_second_ctrl_c_quits_at_once_without_saving(recipe, whole, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    monkeypatch.setattr(training._Loop, "_log_train", signal_after(5, ["INT", "INT"]))
    assert laser("run", recipe, "--run-dir", run_dir) == 130
    assert "interrupted at step" not in capsys.readouterr().err
    assert checkpoint.latest(run_dir) == checkpoint.path_for(run_dir, 3)
    assert [p.name for p in checkpoint.checkpoint_dir(run_dir).iterdir()] == ["step-0000003"]

    monkeypatch.undo()
    assert laser("run", "--resume", run_dir) == 0
    assert_same_run(run_dir, whole)


# -- two processes -----------------------------------------------------------------------------


def test_two_processes_stay_identical_gather_metrics_and_resume_exactly(recipe, tmp_path, capsys):
    whole, run_dir = tmp_path / "whole", tmp_path / "run"
    done = run_two_processes(STOP_AT_STEP, 0, "none", 0, "--", "run", recipe, "--run-dir", whole)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [load_file(whole / f"rank{r}.safetensors") for r in range(2)]
    assert any("bottleneck" in key for key in ranks[0])
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    # eval_batches 1 of 8 patches on each process is all 16 validation patches, gathered:
    # the final metrics are one process's on every patch
    assert laser("eval", whole, "--whole-split") == 0
    alone = json.loads(capsys.readouterr().out)["metrics"]
    final = json.loads((whole / "metrics.json").read_text())
    assert {"mse", "psnr"} <= alone.keys() and final["val_examples"] == 16
    assert {k: final[k] for k in alone} == pytest.approx(alone, rel=1e-6)

    # Ctrl-C seen by rank 1 only, while it logs step 2: the processes agree on it through a
    # non-blocking all-reduce read one step later, so both finish step 3 and save it
    stopped = run_two_processes(
        STOP_AT_STEP, 2, "INT", 1, "--", "run", recipe, "--run-dir", run_dir
    )
    assert stopped.returncode != 0 and "interrupted at step 3;" in stopped.stderr
    assert checkpoint.latest(run_dir) == checkpoint.path_for(run_dir, 3)
    # then rank 0 killed after logging step 5, past the checkpoint at step 3
    killed = run_two_processes(STOP_AT_STEP, 5, "KILL", 0, "--", "run", "--resume", run_dir)
    assert killed.returncode != 0
    assert checkpoint.latest(run_dir) == checkpoint.path_for(run_dir, 3)

    resumed = run_two_processes(STOP_AT_STEP, 0, "none", 0, "--", "run", "--resume", run_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(run_dir, whole)


# -- a crash in the middle of writing a file ---------------------------------------------------


class DiskFull(OSError):
    def __init__(self) -> None:
        super().__init__(28, "No space left on device")


def written_half(path: Path, data: bytes) -> None:
    """What a crash leaves of a write: its first half, then the error."""
    Path(path).write_bytes(data[: len(data) // 2])
    raise DiskFull


def crash_writing(monkeypatch, name: str) -> None:
    """Make the next write of run file ``name`` (or of a temporary file for it) stop half-way."""

    def ours(path) -> bool:
        path = Path(path)
        return path.name == name or path.name.startswith(f".{name}.")

    write_text = Path.write_text
    save_image = Image.Image.save

    def text(self, data, *args, **kwargs):
        if ours(self):
            written_half(self, data.encode())
        return write_text(self, data, *args, **kwargs)

    def tensors(arrays, path, *args, **kwargs):
        if ours(path):
            written_half(path, safetensors_bytes(arrays))
        return save_file(arrays, path, *args, **kwargs)

    def image(self, path, *args, **kwargs):
        if ours(path):
            buffer = io.BytesIO()
            save_image(self, buffer, *args, **kwargs)
            written_half(path, buffer.getvalue())
        return save_image(self, path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", text)
    monkeypatch.setattr(layout, "save_file", tensors)
    monkeypatch.setattr(Image.Image, "save", image)


@pytest.mark.parametrize(
    "name",
    ["metrics.jsonl", "metrics.json", "model.safetensors", "reconstructions/step-0000008.png"],
)
def test_a_crash_while_rewriting_a_run_file_leaves_the_old_file_or_none(
    whole, tmp_path, monkeypatch, name
):
    """A resume removes the final files until it finishes again: what a crash mid-write may
    leave is the old file or none, never half of the new one."""
    run_dir = tmp_path / "run"
    shutil.copytree(whole, run_dir)
    shutil.rmtree(checkpoint.path_for(run_dir, 8))  # the resumed run redoes steps 7 and 8
    target = run_dir / name
    before = target.read_bytes()
    crash_writing(monkeypatch, target.name)
    assert laser("run", "--resume", run_dir) != 0  # reported, no traceback
    assert not target.exists() or target.read_bytes() == before
    if name in ("metrics.jsonl", "reconstructions/step-0000008.png"):
        assert target.read_bytes() == before  # rewritten in place of the old one
    assert [p.name for p in target.parent.iterdir() if _temporary(p)] == []

    monkeypatch.undo()
    assert laser("run", "--resume", run_dir) == 0
    assert_same_run(run_dir, whole)


@pytest.mark.parametrize("name", ["recipe.yaml", "plugins.json"])
def test_a_crash_while_writing_a_new_run_file_leaves_no_half_file(
    recipe, tmp_path, monkeypatch, name
):
    run_dir = tmp_path / "run"
    crash_writing(monkeypatch, name)
    assert (
        laser("run", recipe, "--run-dir", run_dir) != 0
    )  # the CLI reports the error, no traceback
    assert not (run_dir / name).exists()
    assert [p.name for p in run_dir.iterdir() if _temporary(p)] == []


def test_a_crash_while_saving_a_checkpoint_leaves_the_previous_one_the_latest(
    whole, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    shutil.copytree(whole, run_dir)
    for later in (6, 8):
        shutil.rmtree(checkpoint.path_for(run_dir, later))
    save_state = Accelerator.save_state

    def save_then_crash(self, output_dir, **kwargs):
        save_state(self, output_dir, **kwargs)
        weights = Path(output_dir) / "model.safetensors"
        written_half(weights, weights.read_bytes())

    monkeypatch.setattr(Accelerator, "save_state", save_then_crash)
    assert laser("run", "--resume", run_dir) != 0  # reported, no traceback
    assert [p.name for p in checkpoint.complete_checkpoints(run_dir)] == ["step-0000003"]

    monkeypatch.undo()
    assert laser("run", "--resume", run_dir) == 0
    assert_same_run(run_dir, whole)


def _temporary(path: Path) -> bool:
    """A file an atomic write left behind (the run's lock file is meant to stay)."""
    return path.name.startswith(".") and path.name != LOCK_FILE
