"""A trained autoencoder's three views of an image batch (continuous latent, quantized latent,
codes) and the way back to pixels from each; shared by export, its verification and tasks.

Models work on items: images (items, C, H, W) and latents (items, dim, h, w). Exports store
samples channels-last: an image sample is one item, (h, w, dim); a video sample is a clip,
(frames, rows * h, cols * w, dim), its items stitched back frame by frame over the patch grid
(see :class:`laser_core.plugin.contracts.ClipLayout`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from laser_core.assembly.build import Autoencoder
from laser_core.plugin.contracts import BottleneckOutput, ClipLayout, Codes, CodeSpec


@dataclass
class Latents:
    """One batch of items as the model sees it, channels first: the encoder's output
    ``continuous`` (items, dim, h, w), the bottleneck's ``output`` (quantized latent of the
    same shape, codes (items, h, w, depth)) and the ``reconstructions`` (items, C, H, W)."""

    continuous: torch.Tensor
    output: BottleneckOutput
    reconstructions: torch.Tensor

    @property
    def quantized(self) -> torch.Tensor:
        return self.output.quantized

    @property
    def codes(self) -> Codes:
        return self.output.codes


@torch.no_grad()
def encode_images(model: Autoencoder, images: torch.Tensor) -> Latents:
    """Encode images (items, C, H, W) with a model in eval mode; forward's codes equal
    ``encode``'s there, so the bottleneck runs once."""
    continuous = model.encoder(images)
    output = model.bottleneck(continuous)
    return Latents(continuous, output, model.decoder(output.quantized))


@torch.no_grad()
def decode_each_form(
    model: Autoencoder, continuous: torch.Tensor, quantized: torch.Tensor, codes: Codes
) -> dict[str, torch.Tensor]:
    """Images (items, C, H, W) from each stored form (channels-first latents, codes with long
    indices): continuous goes through the bottleneck, quantized straight to the decoder,
    codes through ``bottleneck.decode``. All three equal the live reconstruction."""
    return {
        "continuous": model.decoder(model.bottleneck(continuous).quantized),
        "quantized": model.decoder(quantized),
        "codes": model.decoder(model.bottleneck.decode(codes)),
    }


def items_to_samples(x: torch.Tensor, clips: ClipLayout | None) -> torch.Tensor:
    """Channels-last items (items, h, w, ch) -> samples: unchanged for images, clips
    (items / items_per_clip, frames, rows * h, cols * w, ch) for video."""
    if clips is None:
        return x
    rows, cols = clips.grid
    items, height, width, channels = x.shape
    x = x.reshape(items // clips.items_per_clip, clips.frames, rows, cols, height, width, channels)
    x = x.permute(0, 1, 2, 4, 3, 5, 6)  # (clips, frames, rows, h, cols, w, ch)
    return x.reshape(-1, clips.frames, rows * height, cols * width, channels)


def samples_to_items(x: torch.Tensor, clips: ClipLayout | None) -> torch.Tensor:
    """The inverse of :func:`items_to_samples`: samples -> channels-last (items, h, w, ch)."""
    if clips is None:
        return x
    rows, cols = clips.grid
    samples, frames, height, width, channels = x.shape
    x = x.reshape(samples, frames, rows, height // rows, cols, width // cols, channels)
    x = x.permute(0, 1, 2, 4, 3, 5, 6)  # (clips, frames, rows, cols, h, w, ch)
    return x.reshape(-1, height // rows, width // cols, channels)


def items_to_frames(images: torch.Tensor, clips: ClipLayout | None) -> torch.Tensor:
    """Images (items, C, H, W) as whole pictures: unchanged for images, for video the clips'
    frames with their patches stitched, (clips * frames, C, rows * H, cols * W)."""
    if clips is None:
        return images
    frames = items_to_samples(images.permute(0, 2, 3, 1), clips).flatten(0, 1)
    return frames.permute(0, 3, 1, 2)


@torch.no_grad()
def symbol_vectors(model: Autoencoder, spec: CodeSpec) -> dict[str, torch.Tensor]:
    """What each symbol of each depth slot stands for in latent space, (alphabet_size, dim)
    per slot, or (alphabet_size, dim * p * p) for codes of p x p latent patches: the codebook
    (VQ, Gumbel, each RQ level) or the dictionary atoms (sparse codes, decoded with a
    coefficient of 1). Found through ``bottleneck.decode`` with the other slots
    at symbol 0 (and coefficient 0), so for multi-level codes a level's vectors carry a shift
    shared by all of them. Slots identical to an earlier one (every slot of a sparse code
    shares one dictionary) are left out. Empty for codes without indices."""
    depth = len(spec.alphabet_sizes)
    device = next(model.parameters()).device
    vectors: dict[str, torch.Tensor] = {}
    for slot, size in enumerate(spec.alphabet_sizes):
        indices = torch.zeros(size, 1, 1, depth, dtype=torch.long, device=device)
        indices[..., slot] = torch.arange(size, device=device).view(size, 1, 1)
        values = None
        if spec.has_values:
            values = torch.zeros(size, 1, 1, depth, device=device)
            values[..., slot] = 1.0
        decoded = model.bottleneck.decode(Codes(indices, values)).flatten(1).float().cpu()
        if not any(torch.equal(decoded, earlier) for earlier in vectors.values()):
            vectors[f"slot{slot}"] = decoded
    return vectors


def code_bits(spec: CodeSpec, depth: int) -> int:
    """Bits per latent position of a fixed-length code: ceil(log2 K) per index and 32 per
    stored value (``depth`` values: sparse coefficients or, for codes without indices, the
    latent's dim means). An entropy coder does better; this is the plain upper bound."""
    index_bits = sum(max(1, (size - 1).bit_length()) for size in spec.alphabet_sizes)
    return index_bits + (32 * depth if spec.has_values else 0)
