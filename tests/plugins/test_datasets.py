"""The built-in datasets conform, split as they promise, and fail with messages for people."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import get_args

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from laser_core import SAMPLE_PHOTOS as PHOTOS
from laser_core import PhotoName
from laser_core.errors import LaserError
from laser_core.testing import check_component
from laser_plugins.datasets.common import split_indices
from laser_plugins.datasets.photo_patches import PhotoPatchesConfig

RED, BLUE = (200, 30, 30), (30, 30, 200)


@pytest.fixture(autouse=True)
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HF datasets caches what it prepares; keep that out of the user's cache."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def write_images(folder: Path, colour: tuple[int, int, int], count: int) -> None:
    """``count`` PNGs of one colour, each a different non-square size, under ``folder``."""
    folder.mkdir(parents=True)
    for i in range(count):
        Image.new("RGB", (20 + 3 * i, 12 + i), colour).save(folder / f"{i}.png")


def pixels(dataset) -> torch.Tensor:
    return torch.stack([dataset[i]["image"] for i in range(len(dataset))])


# -- photo-patches ----------------------------------------------------------------------


def test_photo_patches_conforms_in_colour_and_grayscale():
    for channels in (3, 1):
        params = {"size": 16, "train_patches": 32, "val_patches": 8, "channels": channels}
        splits = check_component("datasets", "photo-patches", params)
        assert (len(splits.train), len(splits.val)) == (32, 8)
        assert splits.image_channels == channels and splits.num_classes is None


def test_every_offered_photo_has_a_loader():
    assert set(get_args(PhotoName)) == set(PHOTOS)


def found_in(crop: np.ndarray, photo: np.ndarray) -> bool:
    """Whether crop (S, S, C) is a window of photo (H, W, C)."""
    size = crop.shape[0]
    ys, xs = np.nonzero((photo[: 1 - size, : 1 - size] == crop[0, 0]).all(-1))
    windows = (photo[y : y + size, x : x + size] for y, x in zip(ys, xs, strict=True))
    return any(np.array_equal(window, crop) for window in windows)


def as_photo(image: torch.Tensor) -> np.ndarray:
    """A dataset image (C, H, W) in [-1, 1] back as the uint8 (H, W, C) pixels it was."""
    return ((image + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def test_photo_patches_val_crops_come_only_from_val_photos():
    params = {"size": 24, "train_patches": 8, "val_patches": 8, "val_photos": ["coffee"]}
    splits = check_component("datasets", "photo-patches", params)
    photos = {name: load() for name, load in PHOTOS.items()}
    for i in range(8):
        val_crop, train_crop = as_photo(splits.val[i]["image"]), as_photo(splits.train[i]["image"])
        assert found_in(val_crop, photos["coffee"])
        assert not found_in(train_crop, photos["coffee"])
        assert not any(found_in(val_crop, p) for name, p in photos.items() if name != "coffee")


def test_photo_patches_are_drawn_from_the_seed_alone():
    params = {"size": 8, "train_patches": 16, "val_patches": 4}
    first = check_component("datasets", "photo-patches", params)
    again = check_component("datasets", "photo-patches", params)
    more_val = check_component("datasets", "photo-patches", {**params, "val_patches": 8})
    other_seed = check_component("datasets", "photo-patches", {**params, "seed": 1})
    assert torch.equal(pixels(first.train), pixels(again.train))
    assert torch.equal(pixels(first.val), pixels(again.val))
    assert torch.equal(pixels(first.train), pixels(more_val.train))
    assert not torch.equal(pixels(first.train), pixels(other_seed.train))
    assert first.train[3]["index"] == 3


def test_photo_patches_keeps_a_photo_for_each_split():
    with pytest.raises(ValueError, match="leave at least one"):
        PhotoPatchesConfig(val_photos=list(PHOTOS))
    with pytest.raises(ValueError, match="at least one photograph for validation"):
        PhotoPatchesConfig(val_photos=[])


# -- digits and the stratified split ------------------------------------------------------


def test_digits_conforms_with_ten_classes_in_both_splits():
    splits = check_component("datasets", "digits", {"size": 8, "val_fraction": 0.25})
    assert splits.num_classes == 10 and splits.image_channels == 1
    assert len(splits.train) + len(splits.val) == 1797
    assert len(splits.val) == round(0.25 * 1797)
    assert {splits.val[i]["label"] for i in range(len(splits.val))} == set(range(10))


def test_split_is_stratified_disjoint_and_deterministic():
    labels = np.repeat([0, 1, 2], [50, 30, 2])
    train, val = split_indices(labels, 0.2, seed=0)
    assert sorted([*train, *val]) == list(range(82))
    assert np.bincount(labels[val], minlength=3).tolist() == [10, 6, 0]
    again = split_indices(labels, 0.2, seed=0)
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert not np.array_equal(val, split_indices(labels, 0.2, seed=1)[1])


def test_split_of_two_images_keeps_one_for_each_side():
    train, val = split_indices(np.zeros(2), 0.01, seed=0)
    assert len(train) == len(val) == 1
    with pytest.raises(LaserError, match="at least 2 images"):
        split_indices(np.zeros(1), 0.5, seed=0)


# -- image-folder -------------------------------------------------------------------------


def test_image_folder_labels_come_from_subfolders_and_unreadable_files_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    write_images(tmp_path / "photos" / "blue", BLUE, 4)
    write_images(tmp_path / "photos" / "red", RED, 4)
    broken = tmp_path / "photos" / "red" / "broken.png"
    broken.write_bytes(b"not a png")
    params = {"path": str(tmp_path / "photos"), "size": 8, "val_fraction": 0.25}
    with caplog.at_level(logging.WARNING):
        splits = check_component("datasets", "image-folder", params)
    assert splits.unreadable == [str(broken)]
    assert "skipped 1 unreadable" in caplog.text
    assert splits.num_classes == 2 and len(splits.train) + len(splits.val) == 8
    assert len(splits.val) == 2
    for split in (splits.train, splits.val):
        for i in range(len(split)):
            item = split[i]
            red, blue = item["image"][0].mean(), item["image"][2].mean()
            assert item["label"] == (1 if red > blue else 0)  # subfolders in sorted order


def test_image_folder_uses_the_folders_own_splits(tmp_path: Path):
    for split, count in (("train", 3), ("val", 2)):
        write_images(tmp_path / split / "blue", BLUE, count)
        write_images(tmp_path / split / "red", RED, count)
    params = {"path": str(tmp_path), "size": 4, "channels": 1}
    splits = check_component("datasets", "image-folder", params)
    assert (len(splits.train), len(splits.val)) == (6, 4)
    assert splits.unreadable == []


def test_image_folder_names_a_missing_or_empty_folder(tmp_path: Path):
    with pytest.raises(LaserError, match=f"{tmp_path / 'nowhere'} is not a folder"):
        check_component("datasets", "image-folder", {"path": str(tmp_path / "nowhere")})
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    with pytest.raises(LaserError, match=f"{tmp_path / 'empty'} holds no image files"):
        check_component("datasets", "image-folder", {"path": str(tmp_path / "empty")})


# -- hf -----------------------------------------------------------------------------------


def tiny_hf_dataset(count: int) -> datasets.Dataset:
    features = datasets.Features(
        {"picture": datasets.Image(), "kind": datasets.ClassLabel(names=["blue", "red"])}
    )
    images = [Image.new("RGB", (10, 14), RED if i % 2 else BLUE) for i in range(count)]
    return datasets.Dataset.from_dict(
        {"picture": images, "kind": [i % 2 for i in range(count)]}, features=features
    )


def test_hf_reads_named_splits_of_a_saved_dataset(tmp_path: Path):
    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": tiny_hf_dataset(6), "test": tiny_hf_dataset(4)}).save_to_disk(
        saved
    )
    params = {
        "path": str(saved),
        "image_column": "picture",
        "label_column": "kind",
        "val_split": "test",
        "size": 8,
    }
    splits = check_component("datasets", "hf", params)
    assert (len(splits.train), len(splits.val), splits.num_classes) == (6, 4, 2)
    item = splits.val[0]
    assert item["label"] == int(item["image"][0].mean() > item["image"][2].mean())


def test_hf_holds_out_val_fraction_of_a_single_saved_split(tmp_path: Path):
    tiny_hf_dataset(10).save_to_disk(tmp_path / "saved")
    params = {"path": str(tmp_path / "saved"), "image_column": "picture", "val_fraction": 0.2}
    splits = check_component("datasets", "hf", params)
    assert (len(splits.train), len(splits.val), splits.num_classes) == (8, 2, None)
    assert "label" not in splits.train[0]


def test_hf_explains_wrong_columns_and_folders(tmp_path: Path):
    tiny_hf_dataset(4).save_to_disk(tmp_path / "saved")
    with pytest.raises(LaserError, match=r"no column 'image'.*columns: picture, kind"):
        check_component("datasets", "hf", {"path": str(tmp_path / "saved")})
    (tmp_path / "plain").mkdir()
    with pytest.raises(LaserError, match=f"{tmp_path / 'plain'} is not a dataset written by"):
        check_component("datasets", "hf", {"path": str(tmp_path / "plain")})


def test_hf_hub_name_that_cannot_be_fetched_suggests_offline_routes(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # fail fast, no retries
    with pytest.raises(LaserError, match=r"could not download.*save_to_disk.*image-folder"):
        check_component("datasets", "hf", {"path": "nobody/no-such-dataset"})
