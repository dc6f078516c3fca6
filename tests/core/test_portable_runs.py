"""A run directory opens with nothing but itself: trained on an image folder that is then
deleted, and moved to another path, it rebuilds its model from the image shape it recorded,
decodes what it compressed, and evaluates, exports and classifies the datasets it is given;
for every built-in bottleneck. A run directory an older LASER wrote (tests/fixtures) opens too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from laser_core.cli.main import main
from laser_core.errors import LaserError
from laser_core.recipes.model import load_recipe
from laser_core.rundir import manifest
from laser_core.rundir.layout import RunDir
from laser_core.runs.load import load_run
from laser_core.training.train import train
from tests.helpers import write_image_folder

pytestmark = pytest.mark.slow

BOTTLENECKS = {
    "vq": "{name: vq, codebook_size: 8}",
    "rq": "{name: rq, levels: 2, codebook_size: 8}",
    "gumbel": "{name: gumbel, codebook_size: 8}",
    "gaussian": "{name: gaussian}",
    "fsq": "{name: fsq, levels: [5, 3], codes: index}",
    "lfq": "{name: lfq, dims: 4, codes: per-dimension}",
    "omp": "{name: omp, atoms: 8, sparsity: 2}",
    "ksvd": "{name: ksvd, atoms: 8, sparsity: 2}",
}

# 1-channel images of 8 pixels: neither is a default a rebuilt model could fall back on
RECIPE = """
seed: 0
data: {{name: image-folder, path: {photos}, size: 8, channels: 1, val_fraction: 0.25,
       batch_size: 4}}
encoder: {{name: conv, channels: [4], downsamplings: 1, latent_dim: 4}}
bottleneck: {bottleneck}
decoder: {{name: conv, channels: [4]}}
metrics: [mse]
train: {{steps: 2, lr: 0.01, log_every: 2, eval_batches: 1}}
"""

OLD_RUN = Path(__file__).parents[1] / "fixtures" / "run-laser-0.1.0"
"""A run directory LASER 0.1.0 wrote (digits at 8 pixels, vq), without run.json, with a file
it compressed and that file decompressed; see its README."""


def laser(capsys, *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def train_on_photos(folder: Path, bottleneck: str) -> tuple[Path, Path]:
    """A tiny run trained on ``folder/photos``, and the photos."""
    photos = write_image_folder(folder / "photos")
    recipe = folder / "recipe.yaml"
    recipe.write_text(RECIPE.format(photos=photos, bottleneck=bottleneck))
    return train(load_recipe(recipe), folder / "run").run_dir, photos


@pytest.mark.parametrize("name", BOTTLENECKS)
def test_a_run_moved_away_from_its_deleted_data_decodes_what_it_compressed(tmp_path, capsys, name):
    run_dir, photos = train_on_photos(tmp_path, BOTTLENECKS[name])
    packed = tmp_path / "photo.lsr"
    assert laser(capsys, "compress", run_dir, photos / "0.png", "-o", packed)[0] == 0
    assert laser(capsys, "decompress", run_dir, packed, "-o", tmp_path / "before.png")[0] == 0

    shutil.rmtree(photos)
    moved = Path(shutil.move(run_dir, tmp_path / "elsewhere" / "run"))
    run = load_run(moved)
    assert (run.context.image_channels, run.context.image_size) == (1, 8)
    code, _, err = laser(capsys, "decompress", moved, packed, "-o", tmp_path / "after.png")
    assert code == 0, err
    assert (tmp_path / "after.png").read_bytes() == (tmp_path / "before.png").read_bytes()


def test_a_run_without_its_data_takes_other_datasets_and_says_when_it_needs_one(tmp_path, capsys):
    run_dir, photos = train_on_photos(tmp_path, BOTTLENECKS["vq"])
    shutil.rmtree(photos)
    moved = Path(shutil.move(run_dir, tmp_path / "copy"))

    code, _, err = laser(capsys, "eval", moved)
    assert code == 1 and f"{photos} is not a folder" in err, err
    assert "1-channel images of 8 pixels" in err and "--dataset" in err, err

    labelled = write_image_folder(tmp_path / "labelled", count=12, classes=2)
    block = f"{{name: image-folder, path: {labelled}, size: 8, channels: 1, val_fraction: 0.5}}"
    code, out, err = laser(capsys, "eval", moved, "--dataset", block)
    assert code == 0 and json.loads(out)["split_examples"] == 6, err
    code, _, err = laser(capsys, "export", moved, "--data", block, "--out", tmp_path / "export")
    assert code == 0 and (tmp_path / "export").is_dir(), err
    task = f"task={{name: classify, data: {block}, epochs: 1, inputs: [codes]}}"
    code, out, err = laser(capsys, "task", moved, task)
    assert code == 0 and "codes" in out, err
    rgb = "{name: photo-patches, size: 8, train_patches: 4, val_patches: 4}"
    code, _, err = laser(capsys, "eval", moved, "--dataset", rgb)
    assert code == 1 and "3-channel images" in err and "takes 1-channel images" in err, err


def test_a_run_that_records_no_image_shape_and_lost_its_data_says_so(tmp_path, capsys):
    run_dir, photos = train_on_photos(tmp_path, BOTTLENECKS["vq"])
    manifest.unseal(run_dir, [RunDir.RUN_INFO])  # as an older LASER left it
    (run_dir / RunDir.RUN_INFO).unlink()
    assert load_run(run_dir).context.image_size == 8  # its dataset tells
    shutil.rmtree(photos)
    with pytest.raises(LaserError, match="does not record the image shape") as error:
        load_run(run_dir)
    assert f"{photos} is not a folder" in str(error.value)
    code, _, err = laser(capsys, "eval", run_dir)
    assert code == 1 and "does not record the image shape" in err and "Traceback" not in err


def test_a_run_directory_of_laser_0_1_0_still_evaluates_and_decompresses(tmp_path, capsys):
    run_dir = shutil.copytree(OLD_RUN / "run", tmp_path / "run")
    code, out, err = laser(capsys, "eval", run_dir)
    assert code == 0 and json.loads(out)["metrics"]["val_examples"] == 16, err
    decoded = tmp_path / "decoded.png"
    code, _, err = laser(capsys, "decompress", run_dir, OLD_RUN / "digit.lsr", "-o", decoded)
    assert code == 0, err
    assert decoded.read_bytes() == (OLD_RUN / "decoded.png").read_bytes()
