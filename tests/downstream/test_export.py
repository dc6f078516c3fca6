"""`laser export` as a user relies on it: arrays reload with the documented shapes and decode
to exactly what the live model reconstructs, an interrupted export resumes, video keeps its
clips and patch grid, and --verify reports each stored form."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save as safetensors_bytes

from laser_core import cli
from laser_core.downstream.export import store
from laser_core.downstream.export.store import batch_path, open_export
from laser_core.downstream.export.writer import export
from laser_core.downstream.latents import decode_each_form, encode_images, samples_to_items
from laser_core.errors import LaserError
from laser_core.files import default_mode
from laser_core.plugin.contracts import Codes
from laser_core.runs.load import load_run

pytestmark = pytest.mark.slow


def test_exported_arrays_have_the_documented_shapes_and_decode_like_the_live_model(
    digits_run, tmp_path
):
    run = load_run(digits_run[0])
    export(run, tmp_path / "export", "val", "safetensors")
    exported = open_export(tmp_path / "export")
    arrays = exported.load(("continuous", "quantized", "indices", "labels", "sample_ids"))

    count = len(run.data.val)  # 8x8 digits, one downsampling: 4x4 latents of dim 4, VQ depth 1
    assert arrays["continuous"].shape == (count, 4, 4, 4)
    assert arrays["quantized"].shape == (count, 4, 4, 4)
    assert arrays["indices"].shape == (count, 4, 4, 1) and arrays["indices"].dtype == torch.int32
    assert torch.equal(arrays["sample_ids"], torch.arange(count))
    for name, array in arrays.items():
        assert exported.metadata["arrays"][name]["shape"] == list(array.shape)
    assert exported.metadata["compression"]["ratio"] == pytest.approx(8 * 8 * 8 / (16 * 5))

    images = torch.stack([run.data.val[i]["image"] for i in range(count)])
    labels = torch.tensor([run.data.val[i]["label"] for i in range(count)])
    assert torch.equal(arrays["labels"], labels)
    live = encode_images(run.model, images).reconstructions
    decoded = decode_each_form(
        run.model,
        arrays["continuous"].permute(0, 3, 1, 2),
        arrays["quantized"].permute(0, 3, 1, 2),
        Codes(arrays["indices"].long()),
    )
    for form, reconstructions in decoded.items():
        torch.testing.assert_close(reconstructions, live, atol=1e-5, rtol=0, msg=form)


@pytest.mark.parametrize("format", ["safetensors", "npy"])
def test_an_export_crashed_mid_batch_resumes_to_the_uninterrupted_export(
    digits_run, tmp_path, monkeypatch, format
):
    run = load_run(digits_run[0])
    whole = export(run, tmp_path / "whole", "val", format)
    assert len(whole.written) >= 2
    root, last = tmp_path / "export", whole.written[-1]
    # the disk fills up half-way through the last batch's (first) file
    module = store if format == "safetensors" else np
    name = "save_file" if format == "safetensors" else "save"
    real = getattr(module, name)

    def write_half_then_fail(*args, **kwargs):
        # save_file(tensors, filename) and np.save(file, array)
        arrays, destination = args[:2] if format == "safetensors" else args[1::-1]
        if f"batch-{last:06d}" not in str(getattr(destination, "name", destination)):
            return real(*args, **kwargs)
        buffer = io.BytesIO()
        if format == "safetensors":
            buffer.write(safetensors_bytes(arrays))
        else:
            real(buffer, arrays)
        data = buffer.getvalue()[: len(buffer.getvalue()) // 2]
        if hasattr(destination, "write"):
            destination.write(data)
        else:
            Path(destination).write_bytes(data)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, name, write_half_then_fail)
    with pytest.raises(OSError, match="No space"):
        export(run, root, "val", format)
    monkeypatch.undo()
    assert not batch_path(root, last, format).exists()  # whole or not at all
    kept = {i: batch_path(root, i, format).stat().st_mtime_ns for i in whole.written[:-1]}
    if format == "npy":  # batch folders are as shared as mkdir makes them, not mkdtemp's 0700
        assert batch_path(root, 0, "npy").stat().st_mode & 0o777 == default_mode(directory=True)

    again = export(run, root, "val", format)

    assert again.written == [last] and again.skipped == whole.written[:-1]
    assert {i: batch_path(root, i, format).stat().st_mtime_ns for i in kept} == kept
    names = ("continuous", "quantized", "indices", "labels", "sample_ids")
    resumed, reference = (open_export(r).load(names) for r in (root, tmp_path / "whole"))
    for name in names:
        assert torch.equal(resumed[name], reference[name]), name
    assert json.loads((root / "metadata.json").read_text())["complete"] is True


def test_export_of_the_training_split_holds_every_training_example(digits_run, tmp_path, capsys):
    run_dir, _ = digits_run
    assert cli.main(["export", str(run_dir), "--out", str(tmp_path / "e"), "--split", "train"]) == 0
    run = load_run(run_dir)
    arrays = open_export(tmp_path / "e").load(("indices", "labels", "sample_ids"))
    count = len(run.data.train)
    assert count != len(run.data.val)
    assert torch.equal(arrays["sample_ids"], torch.arange(count))
    images = torch.stack([run.data.train[i]["image"] for i in range(count)])
    labels = torch.tensor([run.data.train[i]["label"] for i in range(count)])
    assert torch.equal(arrays["labels"], labels)
    live = encode_images(run.model, images).codes.indices
    assert torch.equal(arrays["indices"].long(), live)


def test_an_export_directory_of_another_format_is_refused(digits_run, tmp_path):
    run = load_run(digits_run[0])
    export(run, tmp_path / "export", "val", "safetensors")
    with pytest.raises(LaserError, match="differs in format"):
        export(run, tmp_path / "export", "val", "npy")


def test_video_export_keeps_clips_stitches_the_patch_grid_and_verifies(video_run, tmp_path, capsys):
    root = tmp_path / "export"
    clips = video_run.parent / "clips"  # the run's own clips, named as another dataset would be
    data = f"{{name: video-frames, path: {clips}, size: 8, grid: [2, 2], val_fraction: 0.4}}"
    command = ["export", str(video_run), "data.batch_size=1", "--data", data, "--out", str(root)]
    assert cli.main([*command, "--verify"]) == 0
    exported = open_export(root)
    meta = exported.metadata
    assert meta["layout"] == "video" and meta["clips"] == {"frames": 3, "grid": [2, 2]}
    arrays = exported.load(("continuous", "indices"))
    clips = meta["num_samples"]  # 8x8 patches, one downsampling: 4x4 each, 2x2 of them
    assert clips == 2 and arrays["continuous"].shape == (clips, 3, 8, 8, 4)
    assert arrays["indices"].shape == (clips, 3, 8, 8, 1)
    assert meta["image"] == {"height": 16, "width": 16, "channels": 3}

    run = load_run(video_run)
    patches = torch.stack([run.data.val[i]["image"] for i in range(len(run.data.val))])
    live = run.model.encoder(patches).permute(0, 2, 3, 1)
    stored = samples_to_items(arrays["continuous"], exported.clips)
    torch.testing.assert_close(stored, live, atol=1e-5, rtol=0)

    summary = json.loads((root / "verify" / "verify.json").read_text())
    assert set(summary) == {"continuous", "quantized", "codes"}
    assert all(form["max_difference"] < 1e-5 for form in summary.values())
    assert [len(entry["sample_ids"]) for entry in meta["batches"]] == [1, 1]
    assert (root / "verify" / "batch-000001.png").is_file()
    printed = capsys.readouterr().out
    assert "continuous" in printed and "psnr" in printed and "(2, 3, 8, 8, 4)" in printed


def test_a_dataset_block_that_is_not_yaml_is_one_clear_error(digits_run, tmp_path, capsys):
    command = ["export", str(digits_run[0]), "--out", str(tmp_path / "x"), "--data", "{name: x"]
    assert cli.main(command) == 1
    assert "is not YAML" in capsys.readouterr().err
