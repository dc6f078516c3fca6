"""Built-in datasets, one module each: photo-patches, digits, image-folder, hf, video-frames.

Modules import scikit-learn and HF ``datasets`` inside their factories, because every plugin
is imported whenever the registry loads and those imports take seconds.
"""

from __future__ import annotations

from laser_core import Register, hookimpl

from . import digits, hf, image_folder, photo_patches, video_frames


@hookimpl
def laser_register_datasets(register: Register) -> None:
    register("photo-patches", photo_patches.build, config=photo_patches.PhotoPatchesConfig)
    register("digits", digits.build, config=digits.DigitsConfig)
    register("image-folder", image_folder.build, config=image_folder.ImageFolderConfig)
    register("hf", hf.build, config=hf.HFDatasetConfig)
    register("video-frames", video_frames.build, config=video_frames.VideoFramesConfig)
