"""The video-frames dataset: clips from .npy arrays and frame folders, served as patches in
the clip / frame / patch-grid order that export stitches back, with clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from laser_core.downstream.latents import items_to_frames
from laser_core.errors import LaserError
from laser_core.plugin.contracts import ClipLayout
from laser_core.testing import check_component
from laser_plugins.datasets.common import split_indices
from laser_plugins.datasets.video_frames import find_clips, load_clip
from tests.downstream.conftest import write_clips


def test_video_frames_conforms_and_its_patches_stitch_back_into_the_frames(tmp_path):
    folder = write_clips(tmp_path / "clips")
    params = {"path": str(folder), "size": 8, "grid": [2, 2], "val_fraction": 0.4}
    splits = check_component("datasets", "video-frames", params)
    assert splits.clips == ClipLayout(frames=3, grid=(2, 2))
    assert (len(splits.train), len(splits.val)) == (3 * 3 * 4, 2 * 3 * 4)  # clips*frames*patches

    sources = find_clips(folder)
    names = ["clip0.npy", "clip1.npy", "clip2.npy", "clip3.npy", "clip4"]
    assert [source.name for source in sources] == names
    split_clips = split_indices(np.zeros(5), 0.4, 0)
    for split, clips in zip((splits.train, splits.val), split_clips, strict=True):
        patches = torch.stack([item["image"] for item in split])
        served = items_to_frames(patches, splits.clips).add(1).mul(127.5).round().to(torch.uint8)
        fitted = [load_clip(sources[clip], 16, 16) for clip in np.sort(clips)]
        assert torch.equal(served, torch.cat(fitted).permute(0, 3, 1, 2))


def test_clips_of_unequal_length_ask_for_a_frame_count(tmp_path):
    folder = write_clips(tmp_path / "clips")
    np.save(folder / "clip0.npy", np.zeros((5, 20, 24, 3), dtype=np.uint8))
    with pytest.raises(LaserError, match="set frames: N"):
        check_component("datasets", "video-frames", {"path": str(folder), "size": 8})
    splits = check_component(
        "datasets", "video-frames", {"path": str(folder), "size": 8, "frames": 2}
    )
    assert splits.clips == ClipLayout(frames=2)


def test_a_clip_array_of_the_wrong_shape_is_named(tmp_path):
    folder = write_clips(tmp_path / "clips")
    np.save(folder / "clip1.npy", np.zeros((3, 20, 24), dtype=np.float32))
    with pytest.raises(LaserError, match=r"clip1.npy holds float32 \(3, 20, 24\)"):
        check_component("datasets", "video-frames", {"path": str(folder), "size": 8})
