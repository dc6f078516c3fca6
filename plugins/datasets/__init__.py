"""Built-in datasets, one module each: photo-patches, digits, image-folder, hf, video-frames.

Modules import scikit-learn and HF ``datasets`` inside their factories, because every plugin
is imported whenever the registry loads and those imports take seconds.
"""

from __future__ import annotations

from laser_core import Register, hookimpl

from . import digits, hf, image_folder, photo_patches, video_frames


@hookimpl
def laser_register_datasets(register: Register) -> None:
    register(
        "photo-patches",
        photo_patches.build,
        config=photo_patches.PhotoPatchesConfig,
        summary="random crops of the photographs scikit-image and scikit-learn ship; no download",
    )
    register(
        "digits",
        digits.build,
        config=digits.DigitsConfig,
        summary="scikit-learn's labelled 8x8 digits, resized; no download",
    )
    register(
        "image-folder",
        image_folder.build,
        config=image_folder.ImageFolderConfig,
        summary="a local folder of images, labels from subfolders, unreadable files skipped",
    )
    register(
        "hf",
        hf.build,
        config=hf.HFDatasetConfig,
        summary="a Hugging Face dataset by Hub name or save_to_disk folder",
    )
    register(
        "video-frames",
        video_frames.build,
        config=video_frames.VideoFramesConfig,
        summary="video clips (frame folders or .npy arrays) served frame by frame, patch grid",
    )
