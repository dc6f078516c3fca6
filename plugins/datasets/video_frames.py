"""video-frames: video clips served frame by frame, so an image autoencoder trains on them
and ``laser export`` regroups its latents into clips, (clips, frames, h, w, dim).

``path`` holds one entry per clip: a folder of frame images (in file-name order, so number
them with zero padding) or a ``.npy`` array of uint8 frames (frames, H, W, 3). Each frame is
resized (short side) and center-cropped to ``grid`` x ``size`` pixels and, for a grid larger
than 1 x 1, cut into patches of ``size`` x ``size``, so large frames train at a small size.
Items run clip by clip, frame by frame, patch row by patch row (``DataSplits.clips``). Clips
are held in memory as uint8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from pydantic import Field

from laser_core import (
    BuildContext,
    ClipLayout,
    DatasetConfig,
    DataSplits,
    FiniteFloat,
    LaserError,
    PositiveInt,
    Seed,
    image_pixels,
)

from .common import InMemoryImages, split_indices


class VideoFramesConfig(DatasetConfig):
    path: str = Field(description="folder of clips: frame folders and/or .npy (frames, H, W, 3)")
    size: PositiveInt = Field(
        32, ge=2, description="side in pixels of what the model sees per item"
    )
    grid: tuple[PositiveInt, PositiveInt] = Field(
        (1, 1), description="(rows, cols) of size x size patches each frame is cut into"
    )
    frames: PositiveInt | None = Field(
        None, description="frames taken from the start of each clip; null: all, equal"
    )
    val_fraction: FiniteFloat = Field(0.2, gt=0, lt=1, description="share of clips held out")
    seed: Seed = Field(0, description="seeds the train/val split of clips")


def build(config: VideoFramesConfig, context: BuildContext) -> DataSplits:
    """Video clips (frame folders or .npy arrays) served frame by frame, patch grid.

    Clips split into train and val as wholes, so no val frame was seen in training."""
    root = Path(config.path).expanduser()
    sources = find_clips(root)
    if len(sources) < 2:
        raise LaserError(
            f"video-frames: {root} holds {len(sources)} clips; it needs at least 2 (one for "
            "training, one for validation): frame folders or .npy arrays (frames, H, W, 3)"
        )
    rows, cols = config.grid
    height, width = rows * config.size, cols * config.size
    clips = [load_clip(source, height, width) for source in sources]
    frames = config.frames or len(clips[0])
    for source, clip in zip(sources, clips, strict=True):
        if len(clip) < frames or (config.frames is None and len(clip) != frames):
            raise LaserError(
                f"video-frames: {source} has {len(clip)} frames, {sources[0].name} has "
                f"{len(clips[0])}; set frames: N to take the first N frames of every clip"
            )
    patches = torch.stack([patch_grid(clip[:frames], config.size) for clip in clips])
    train, val = split_indices(np.zeros(len(clips)), config.val_fraction, config.seed)
    return DataSplits(
        InMemoryImages(patches[np.sort(train)].flatten(0, 3)),
        InMemoryImages(patches[np.sort(val)].flatten(0, 3)),
        image_channels=3,
        image_size=config.size,
        clips=ClipLayout(frames, (rows, cols)),
    )


def find_clips(root: Path) -> list[Path]:
    """Clip folders (holding at least one image) and .npy files directly under ``root``."""
    if not root.is_dir():
        raise LaserError(f"video-frames: {root} is not a folder; set path to a folder of clips")
    image_suffixes = set(Image.registered_extensions())
    return [
        entry
        for entry in sorted(root.iterdir())
        if entry.suffix == ".npy"
        or (entry.is_dir() and any(f.suffix.lower() in image_suffixes for f in entry.iterdir()))
    ]


def load_clip(source: Path, height: int, width: int) -> torch.Tensor:
    """A clip as uint8 (frames, height, width, 3), every frame fitted without stretching."""
    if source.suffix == ".npy":
        array = np.load(source)
        if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
            raise LaserError(
                f"video-frames: {source} holds {array.dtype} {array.shape}; a clip array must "
                "be uint8 (frames, H, W, 3)"
            )
        pictures = [Image.fromarray(frame) for frame in array]
    else:
        image_suffixes = set(Image.registered_extensions())
        pictures = []
        for file in sorted(f for f in source.iterdir() if f.suffix.lower() in image_suffixes):
            with Image.open(file) as image:
                pictures.append(Image.fromarray(image_pixels(image, 3)))
    fitted = [ImageOps.fit(p, (width, height), Image.Resampling.BICUBIC) for p in pictures]
    return torch.from_numpy(np.stack([np.asarray(p, dtype=np.uint8) for p in fitted]))


def patch_grid(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Frames (frames, rows * size, cols * size, 3) -> patches (frames, rows, cols, 3, size,
    size), in the item order of :class:`laser_core.plugin.contracts.ClipLayout`."""
    frames, height, width, channels = clip.shape
    patches = clip.reshape(frames, height // size, size, width // size, size, channels)
    return patches.permute(0, 1, 3, 5, 2, 4).contiguous()
