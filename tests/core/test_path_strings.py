"""Every public function that takes a file or folder takes a string as well as a path: each is
called here with strings only, on one tiny trained run, and does its job (or, where the input
is not one it accepts, says so in a LaserError rather than an AttributeError)."""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import laser_core
from laser_core import LaserError
from laser_core.campaigns.definition import Axis, from_arguments
from laser_core.campaigns.executors import InlineExecutor
from laser_core.cli.main import main
from laser_core.rundir.layout import RunDir

RECIPE = """
seed: 0
data: {name: photo-patches, size: 16, train_patches: 32, val_patches: 8, batch_size: 8}
encoder: {name: conv, channels: [8], downsamplings: 1, latent_dim: 4}
bottleneck: {name: omp, atoms: 16, sparsity: 2}
decoder: {name: conv, channels: [8]}
metrics: [mse]
train: {steps: 2, lr: 0.005, log_every: 2, eval_batches: 1}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A run trained by ``run_recipe`` from a recipe loaded by ``load_recipe``, both given
    strings; the run directory as a string."""
    folder = tmp_path_factory.mktemp("strings")
    (folder / "recipe.yaml").write_text(RECIPE)
    recipe = laser_core.load_recipe(str(folder / "recipe.yaml"))
    result = laser_core.run_recipe(recipe, str(folder / "run"))
    assert RunDir(result.run_dir).model_safetensors.is_file()
    return str(folder / "run")


def _copy(run_dir: str, tmp: Path) -> str:
    """A copy of the run, for calls that write into it."""
    return str(shutil.copytree(run_dir, tmp / "copy"))


def _image(tmp: Path) -> str:
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp / "image.png")
    return str(tmp / "image.png")


def _compress_then_decompress(run_dir: str, tmp: Path) -> None:
    copy = _copy(run_dir, tmp)
    written = laser_core.compress_files(copy, [_image(tmp)], str(tmp / "image.lsr"))
    assert written.path.is_file()
    assert laser_core.decompress_file(copy, str(tmp / "image.lsr"), str(tmp / "back.png"))


def _export_then_analyze(run_dir: str, tmp: Path) -> None:
    laser_core.export_run(run_dir, str(tmp / "export"))
    analysis = laser_core.analyze_export(str(tmp / "export"), str(tmp / "analysis"))
    assert (tmp / "analysis" / "report.html").is_file(), analysis


def _sweep(run_dir: str, tmp: Path) -> None:
    recipe = str(Path(run_dir) / RunDir.RECIPE)
    sweep = from_arguments(Path(recipe), [Axis("seed", ("1",))], [], ["train.steps=1"])
    result = laser_core.run_sweep(sweep, str(tmp / "sweep"), executor=InlineExecutor(main))
    assert [status.state for status in result.table.runs.values()] == ["done"]


def _refused(call: Callable[[], object], message: str) -> None:
    with pytest.raises(LaserError, match=message):
        call()


CASES: dict[str, Callable[[str, Path], object]] = {
    "load_recipe": lambda run, tmp: laser_core.load_recipe(str(Path(run) / RunDir.RECIPE)),
    "load_run": lambda run, tmp: laser_core.load_run(run),
    "evaluate_run": lambda run, tmp: laser_core.evaluate_run(run),
    "resume_run": lambda run, tmp: laser_core.resume_run(_copy(run, tmp)),
    "rerun_task": lambda run, tmp: _refused(
        lambda: laser_core.rerun_task(run), "has no task block"
    ),
    "export_run, analyze_export": _export_then_analyze,
    "count_priors": lambda run, tmp: laser_core.count_priors(_copy(run, tmp), max_images=8),
    "compress_files, decompress_file": _compress_then_decompress,
    "finetune_quantized": lambda run, tmp: laser_core.finetune_quantized(
        _copy(run, tmp), str(tmp / "tuned"), steps=1
    ),
    "compare_rd": lambda run, tmp: laser_core.compare_rd(
        [_copy(run, tmp)], str(tmp / "rd"), str(Path(_image(tmp)).parent)
    ),
    "compare_runs": lambda run, tmp: laser_core.compare_runs([run], str(tmp / "compare")),
    "run_sweep": _sweep,
    "import_taming": lambda run, tmp: _refused(
        lambda: laser_core.import_taming(_image(tmp), _image(tmp), str(tmp / "out")),
        "not a taming training config",
    ),
    "import_diffusers": lambda run, tmp: _refused(
        lambda: laser_core.import_diffusers(str(tmp), str(tmp / "out")), "config.json"
    ),
}
"""Calls with strings only, by the public functions they cover; the fixture covers
``run_recipe``."""


@pytest.mark.parametrize("name", CASES)
def test_a_public_function_takes_strings_for_paths(name, trained, tmp_path):
    CASES[name](trained, tmp_path)


def test_every_public_function_that_takes_a_path_is_called_with_strings():
    """A new public function with a path parameter joins CASES; a parameter typed ``Path``
    alone would refuse the strings people pass."""
    takes_paths, path_only = set(), []
    for name in laser_core.__all__:
        function = getattr(laser_core, name)
        if not inspect.isfunction(function):
            continue
        for parameter in inspect.signature(function).parameters.values():
            annotation = str(parameter.annotation)
            if "PathLike" in annotation:
                takes_paths.add(name)
            elif "Path" in annotation:
                path_only.append(f"{name}({parameter.name}: {annotation})")
    assert path_only == []
    covered = {name for names in CASES for name in names.split(", ")} | {"run_recipe"}
    assert takes_paths == covered
