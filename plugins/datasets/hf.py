"""hf: any image dataset HF ``datasets`` can load, from the Hub or a ``save_to_disk`` folder.

An existing local path is read with ``load_from_disk``; anything else is a Hub name. Machines
without network use the former: ``load_dataset(NAME).save_to_disk(DIR)`` where there is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from laser_core import BuildContext, DataSplits, LaserError, did_you_mean

from .hf_images import ResizedImagesConfig, hf_splits

if TYPE_CHECKING:
    import datasets


class HFDatasetConfig(ResizedImagesConfig):
    path: str = Field(description="Hub dataset name (user/name) or a save_to_disk folder")
    image_column: str = "image"
    label_column: str | None = Field(None, description="class ids; none: unlabelled")
    train_split: str = "train"
    val_split: str | None = Field(
        None, description="e.g. test or validation; none: hold out val_fraction of train"
    )


def build(config: HFDatasetConfig, context: BuildContext) -> DataSplits:
    """A Hugging Face dataset by Hub name or save_to_disk folder."""
    import datasets  # imported here: loading every plugin must stay fast

    found = _load(config.path)
    source = f"hf dataset {config.path}"
    if isinstance(found, datasets.Dataset):
        if config.val_split is not None:
            raise LaserError(
                f"{source} is a single split, so it has no split '{config.val_split}'; remove "
                "val_split to hold out val_fraction of it"
            )
        train, val = found, None
    else:
        train = _split(found, config.train_split, source)
        val = None if config.val_split is None else _split(found, config.val_split, source)
    return hf_splits(train, val, config.image_column, config.label_column, config, source)


def _load(path: str) -> datasets.Dataset | datasets.DatasetDict:
    import datasets

    if Path(path).expanduser().exists():
        folder = Path(path).expanduser().resolve()
        try:
            return datasets.load_from_disk(str(folder))
        except FileNotFoundError as error:
            raise LaserError(
                f"hf: {folder} is not a dataset written by save_to_disk ({error}); for a "
                "folder of image files use the image-folder dataset"
            ) from None
    try:
        return datasets.load_dataset(path)
    except (OSError, ValueError) as error:  # ConnectionError and not-found are OSErrors
        raise LaserError(
            f"hf: could not download dataset '{path}' from the Hugging Face Hub ({error}). "
            "Check the name and the network; without network, run "
            f"datasets.load_dataset('{path}').save_to_disk(DIR) on a machine that has it, copy "
            "DIR here and set path: DIR, or put the images in a folder and use image-folder"
        ) from None


def _split(found: datasets.DatasetDict, name: str, source: str) -> datasets.Dataset:
    if name not in found:
        raise LaserError(
            f"{source} has no split '{name}'{did_you_mean(name, found)}; splits: {', '.join(found)}"
        )
    return found[name]
