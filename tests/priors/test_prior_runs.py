"""`laser prior`, `laser sample` and `laser compress --prior` on a tiny finished run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from laser_core.cli.main import main
from laser_core.coding import container
from laser_core.rundir import manifest

COUNTS = Path(__file__).parents[2] / "recipes" / "priors" / "counts.yaml"


def _images(folder: Path) -> list[str]:
    """Three grayscale images of different sizes, two of them not a multiple of the tile."""
    paths = []
    for number, height in enumerate((8, 13, 24)):
        pixels = np.random.default_rng(number).integers(0, 256, (height, 16), dtype=np.uint8)
        path = folder / f"image-{number}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return paths


def test_a_trained_prior_lands_in_the_run_with_its_bits_and_samples(
    fresh_run, transformer_recipe, capsys
):
    assert main(["prior", str(fresh_run), str(COUNTS)]) == 0
    assert main(["prior", str(fresh_run), str(transformer_recipe(4))]) == 0
    for name, side in (("counts", 4), ("tiny", 2)):  # 16 and 4 samples of 8 px
        folder = fresh_run / "priors" / name
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["val_images"] > 0
        assert metrics["bits_per_pixel"] == pytest.approx(metrics["bits_per_image"] / 64)
        assert manifest.verify(folder, ["prior.json", "model.safetensors", "metrics.json"])
        with Image.open(folder / "samples.png") as grid:
            assert grid.size == (side * 9 + 1, side * 9 + 1)
    grid = fresh_run / "s.png"
    argv = ["sample", str(fresh_run), "--prior", "tiny", "-n", "3", "--class", "7", "-o"]
    assert main([*argv, str(grid)]) == 0
    with Image.open(grid) as image:
        assert image.size == (2 * 9 + 1, 2 * 9 + 1)  # 3 images of 8 px in a 2 x 2 grid
    capsys.readouterr()
    assert main(["eval", str(fresh_run)]) == 0
    reported = json.loads(capsys.readouterr().out)["metrics"]
    for name in ("counts", "tiny"):
        stored = json.loads((fresh_run / "priors" / name / "metrics.json").read_text())
        assert reported[f"prior/{name}/bits_per_pixel"] == pytest.approx(stored["bits_per_pixel"])


def test_compress_under_a_transformer_prior_round_trips_bit_exactly(
    fresh_run, transformer_recipe, tmp_path
):
    assert main(["prior", str(fresh_run), str(transformer_recipe(2))]) == 0
    images = _images(tmp_path)
    for prior in ([], ["--prior", "tiny"]):
        output = tmp_path / f"file{len(prior)}.lsr"
        assert main(["compress", str(fresh_run), *images, "-o", str(output), *prior]) == 0
        assert main(["decompress", str(fresh_run), str(output), "-o", str(output) + ".png"]) == 0
    found = container.unpack((tmp_path / "file2.lsr").read_bytes(), "file")
    assert found.version == 2 and all(not image.payload for image in found.images)
    for number in range(3):  # the same codes, coded under another prior, decode the same
        counted = np.asarray(Image.open(tmp_path / f"file0.lsr-{number}.png"))
        learned = np.asarray(Image.open(tmp_path / f"file2.lsr-{number}.png"))
        assert counted.shape == learned.shape and (counted == learned).all()


def test_an_interrupted_prior_training_resumes_exactly(tiny_run, transformer_recipe, tmp_path):
    import shutil

    straight, resumed = (Path(shutil.copytree(tiny_run, tmp_path / n)) for n in "ab")
    assert main(["prior", str(straight), str(transformer_recipe(4, "p"))]) == 0
    assert main(["prior", str(resumed), str(transformer_recipe(2, "p"))]) == 0
    assert main(["prior", str(resumed), str(transformer_recipe(4, "p")), "--resume"]) == 0
    a, b = (
        load_file(str(run / "priors" / "p" / "model.safetensors")) for run in (straight, resumed)
    )
    assert all(torch.equal(a[key], b[key]) for key in a)
    lines = (resumed / "priors" / "p" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines if '"train"' in line] == [1, 2, 3, 4]


def test_bad_prior_inputs_are_clear_messages(fresh_run, transformer_recipe, capsys):
    run = str(fresh_run)
    assert main(["prior", run, str(COUNTS)]) == 0
    out = str(fresh_run / "s.png")
    cases = {
        ("sample", run, "--prior", "counts", "--class", "3", "-o", out): "unconditional",
        ("sample", run, "--prior", "counts", "-n", "0", "-o", out): "-n must be at least 1",
        ("sample", run, "--prior", "counts", "--temperature", "0", "-o", out): "above 0",
        ("sample", run, "--prior", "nope", "-o", out): "no trained prior 'nope'",
        ("prior", run, str(COUNTS)): "exists already",
    }
    for argv, message in cases.items():
        assert main(list(argv)) == 1
        assert message in capsys.readouterr().err
    record_path = fresh_run / "priors" / "counts" / "prior.json"
    record = json.loads(record_path.read_text())
    record["symbols"]["alphabet_sizes"] = [16]
    record_path.write_text(json.dumps(record))
    manifest.seal(record_path.parent, ["prior.json"])
    assert main(["sample", run, "--prior", "counts", "-o", out]) == 1
    assert "models other codes" in capsys.readouterr().err
    with open(fresh_run / "recipe.yaml", "a") as recipe:  # now another model, other codes
        recipe.write("# changed\n")
    manifest.seal(fresh_run, ["recipe.yaml"])
    (fresh_run / "priors.safetensors").unlink()  # counted again for the changed model
    assert main(["sample", run, "--prior", "counts", "-o", out]) == 1
    assert "trained on another run's codes" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["counts", "transformer-cpu", "transformer-gpu"])
def test_shipped_prior_recipes_validate_and_say_how_to_run(name):
    from laser_core.priors.recipe import load_prior_recipe

    path = COUNTS.with_name(f"{name}.yaml")
    assert load_prior_recipe(path).name == name
    assert f"laser prior RUN_DIR recipes/priors/{name}.yaml" in path.read_text() or (
        "laser prior runs/quickstart recipes/priors/transformer-cpu.yaml" in path.read_text()
    )
