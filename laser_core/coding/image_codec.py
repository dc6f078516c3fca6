"""What every image codec derives from its four steps: ``encode`` one image, ``pack`` codes
into a file's bytes, ``reconstruct`` an image from its code and the ``rates`` of a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from laser_core.coding.rates import Rates
from laser_core.errors import LaserError


class ImageCodec:
    """``compress`` and ``measure`` once for the tiled codec and the whole-image codec."""

    held_by_model = "codebook"
    """What decoding reads from the model besides the file (``codebook_bytes`` of it)."""

    def encode(self, image: torch.Tensor) -> Any:
        raise NotImplementedError

    def pack(self, encoded: list[Any]) -> tuple[bytes, float]:
        raise NotImplementedError

    def reconstruct(self, encoded: Any) -> torch.Tensor:
        raise NotImplementedError

    def rates(self, encoded: list[Any], file_bytes: int, cross_entropy: float) -> Rates:
        raise NotImplementedError

    def compress(self, images: list[torch.Tensor]) -> tuple[bytes, Rates]:
        """A ``.lsr`` file holding ``images``, each (C, H, W) in [-1, 1], and its rates."""
        encoded = [self.encode(image) for image in images]
        data, bits = self.pack(encoded)
        return data, self.rates(encoded, len(data), bits)

    def measure(self, image: torch.Tensor) -> tuple[torch.Tensor, Rates]:
        """The reconstruction (C, H, W) of one image compressed alone, and its rates: the
        reconstruction decompression gives, from the very code it reads."""
        encoded = self.encode(image)
        data, bits = self.pack([encoded])
        return self.reconstruct(encoded), self.rates([encoded], len(data), bits)


def check_model(written: bytes, model_id: bytes, run_dir: Path, source: str) -> None:
    """Refuse a file whose model identity is not the run's."""
    if written != model_id:
        raise LaserError(
            f"{source} was compressed by another model ({written.hex()[:12]}) than the one in "
            f"{run_dir} ({model_id.hex()[:12]}); decompress it with the run directory that "
            "compressed it"
        )
