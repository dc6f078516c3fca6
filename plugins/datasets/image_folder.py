"""image-folder: a local folder of images through HF ``datasets``' imagefolder builder.

Subfolder names become class labels (``cats/1.png`` -> "cats"); top-level ``train/``,
``val/`` or ``validation/`` and ``test/`` folders become splits. Every image is decoded once
here, so an unreadable file is skipped and counted before training, not a crash mid-epoch.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from pydantic import Field

from laser_core import BuildContext, DataSplits, LaserError

from .hf_images import ResizedImagesConfig, hf_splits

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)


class ImageFolderConfig(ResizedImagesConfig):
    path: Path = Field(description="folder of images, one subfolder per class if labelled")


@dataclass
class FolderSplits(DataSplits):
    """DataSplits that also lists the files skipped because they could not be decoded."""

    unreadable: list[str] = field(default_factory=list)


def build(config: ImageFolderConfig, context: BuildContext) -> FolderSplits:
    import datasets  # imported here: loading every plugin must stay fast
    from datasets.data_files import EmptyDatasetError

    folder = config.path.expanduser().resolve()
    if not folder.is_dir():
        raise LaserError(
            f"image-folder: {folder} is not a folder; set path to a folder of images "
            "(one subfolder per class)"
        )
    try:
        found = datasets.load_dataset("imagefolder", data_dir=str(folder))
    except EmptyDatasetError:
        raise LaserError(
            f"image-folder: {folder} holds no image files (png, jpg, ...); put images in it "
            "or in one subfolder per class"
        ) from None
    unreadable: list[str] = []
    found = {name: _readable(rows, unreadable) for name, rows in found.items()}
    if unreadable:
        log.warning(
            "image-folder: skipped %d unreadable image(s) in %s, e.g. %s",
            len(unreadable),
            folder,
            unreadable[0],
        )
    if "train" not in found:
        raise LaserError(f"image-folder: {folder} has no training images, only {list(found)}")
    val = found.get("validation", found.get("test"))
    label_column = "label" if "label" in found["train"].column_names else None
    splits = hf_splits(found["train"], val, "image", label_column, config, f"image-folder {folder}")
    return FolderSplits(**vars(splits), unreadable=unreadable)


def _readable(rows: datasets.Dataset, unreadable: list[str]) -> datasets.Dataset:
    """The rows whose image PIL can decode; appends the paths of the others to ``unreadable``."""
    import datasets

    files = rows.cast_column("image", datasets.Image(decode=False))["image"]
    keep = []
    for position, file in enumerate(files):
        source = file["path"] if file["bytes"] is None else io.BytesIO(file["bytes"])
        try:
            with Image.open(source) as image:
                image.load()
        except Exception:  # PIL raises OSError, SyntaxError, ValueError... by format
            unreadable.append(file["path"])
            continue
        keep.append(position)
    return rows if len(keep) == len(rows) else rows.select(keep)
