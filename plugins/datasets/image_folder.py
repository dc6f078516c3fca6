"""image-folder: a local folder of images through HF ``datasets``' imagefolder builder.

Subfolder names become class labels (``cats/1.png`` -> "cats"); top-level ``train/``,
``val/`` or ``validation/`` and ``test/`` folders become splits. Every image is decoded once
here, so an unreadable file is skipped and counted before training, not a crash mid-epoch, and
images smaller than ``size`` are upscaled, skipped or refused as ``smaller_images`` says, and
counted. Pixels are read upright (EXIF orientation) and scaled from their bit depth (16-bit
PNG and TIFF), palettes, alpha and CMYK converted (``laser_core.image_pixels``).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from PIL import Image, ImageOps
from pydantic import Field

from laser_core import BuildContext, DataSplits, LaserError

from .hf_images import ResizedImagesConfig, hf_splits

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)


class ImageFolderConfig(ResizedImagesConfig):
    path: Path = Field(description="folder of images, one subfolder per class if labelled")
    smaller_images: Literal["upscale", "skip", "refuse"] = Field(
        "upscale",
        description="images whose short side is below size: upscale them (with a warning), "
        "skip them, or refuse the folder; each is counted",
    )


@dataclass
class FolderSplits(DataSplits):
    """DataSplits that also lists the files left out: undecodable, or smaller than ``size``
    under ``smaller_images: skip``; and those upscaled."""

    unreadable: list[str] = field(default_factory=list)
    too_small: list[str] = field(default_factory=list)
    upscaled: list[str] = field(default_factory=list)


def build(config: ImageFolderConfig, context: BuildContext) -> FolderSplits:
    """A local folder of images, labels from subfolders, unreadable files skipped."""
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
    census = _Census()
    found = {name: census.usable(rows, config) for name, rows in found.items()}
    census.report(folder, config)
    if "train" not in found:
        raise LaserError(f"image-folder: {folder} has no training images, only {list(found)}")
    val = found.get("validation", found.get("test"))
    label_column = "label" if "label" in found["train"].column_names else None
    splits = hf_splits(found["train"], val, "image", label_column, config, f"image-folder {folder}")
    return FolderSplits(
        **vars(splits),
        unreadable=census.unreadable,
        too_small=census.too_small if config.smaller_images == "skip" else [],
        upscaled=census.too_small if config.smaller_images == "upscale" else [],
    )


@dataclass
class _Census:
    """Files that cannot be decoded, and those smaller than the configured size."""

    unreadable: list[str] = field(default_factory=list)
    too_small: list[str] = field(default_factory=list)

    def usable(self, rows: datasets.Dataset, config: ImageFolderConfig) -> datasets.Dataset:
        """The rows kept: decodable, and large enough unless ``smaller_images`` upscales."""
        import datasets

        files = rows.cast_column("image", datasets.Image(decode=False))["image"]
        keep = []
        for position, file in enumerate(files):
            source = file["path"] if file["bytes"] is None else io.BytesIO(file["bytes"])
            try:
                with Image.open(source) as image:
                    image.load()
                    width, height = ImageOps.exif_transpose(image).size
            except Exception:  # PIL raises OSError, SyntaxError, ValueError... by format
                self.unreadable.append(file["path"])
                continue
            if min(width, height) < config.size:
                self.too_small.append(file["path"])
                if config.smaller_images == "skip":
                    continue
            keep.append(position)
        return rows if len(keep) == len(rows) else rows.select(keep)

    def report(self, folder: Path, config: ImageFolderConfig) -> None:
        if self.unreadable:
            log.warning(
                "image-folder: skipped %d unreadable image(s) in %s, e.g. %s",
                len(self.unreadable),
                folder,
                self.unreadable[0],
            )
        if not self.too_small:
            return
        what = f"{len(self.too_small)} image(s) in {folder} smaller than size={config.size}"
        if config.smaller_images == "refuse":
            raise LaserError(
                f"image-folder: {what}, e.g. {self.too_small[0]}; lower size, or set "
                "smaller_images to upscale or skip"
            )
        action = "skipped" if config.smaller_images == "skip" else "upscaled"
        log.warning("image-folder: %s %s, e.g. %s", action, what, self.too_small[0])
