"""`laser eval RUN --dataset BLOCK`: a finished run's metrics on another dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from laser_core import cli
from laser_core.runs.load import load_run

pytestmark = pytest.mark.slow


def test_eval_on_another_dataset_scores_that_datasets_images(digits_run, tmp_path, capsys):
    run_dir, _ = digits_run
    pixels = (np.add.outer(np.arange(8), np.arange(8)) * 18).astype(np.uint8)  # a gradient
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):  # identical images: whichever the val split holds, the score is one
        Image.fromarray(pixels, mode="L").save(folder / f"{i}.png")
    block = f"{{name: image-folder, path: {folder}, size: 8, channels: 1, val_fraction: 0.5}}"

    assert cli.main(["eval", str(run_dir), "--dataset", block]) == 0
    scored = json.loads(capsys.readouterr().out)["metrics"]
    assert cli.main(["eval", str(run_dir)]) == 0
    own = json.loads(capsys.readouterr().out)["metrics"]

    model = load_run(run_dir).model.eval()
    image = torch.from_numpy(pixels).float().div(127.5).sub(1).view(1, 1, 8, 8)
    with torch.no_grad():
        reconstruction = model(image)[0].clamp(-1, 1)
    expected = ((image - reconstruction) / 2).square().mean().item()
    assert scored["mse"] == pytest.approx(expected, rel=1e-5)
    assert scored["mse"] != pytest.approx(own["mse"], rel=1e-2)
