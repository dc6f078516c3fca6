"""Conformance checks any plugin author runs against their components.

    from laser_core.testing import check_component
    def test_my_bottleneck_conforms():
        check_component("bottlenecks", "my-bottleneck", {"atoms": 64})

Each check raises AssertionError with a message saying which part of the contract broke.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from laser_core.plugin.contracts import (
    Bottleneck,
    BottleneckOutput,
    BuildContext,
    Codes,
    DataSplits,
)
from laser_core.plugin.registry import Component, Registry, default_registry


def check_component(
    kind: str,
    name: str,
    params: dict[str, Any] | None = None,
    context: BuildContext | None = None,
    registry: Registry | None = None,
) -> Any:
    """Build ``name`` from ``params`` and run every check that applies to its kind."""
    component = (registry or default_registry()).get(kind, name)
    config = check_config_round_trip(component, params or {})
    context = context or BuildContext(image_channels=3, image_size=16, latent_dim=8)
    built = component.factory(config, context)

    def rebuild() -> Any:
        return component.factory(config, context)

    checks = {
        "encoders": lambda: check_encoder(built, context, rebuild),
        "decoders": lambda: check_decoder(built, context, rebuild),
        "bottlenecks": lambda: check_bottleneck(built, context.latent_dim, rebuild),
        "datasets": lambda: check_dataset(built),
        "discriminators": lambda: check_discriminator(built, context),
    }
    if kind in checks:
        checks[kind]()
    return built


def check_config_round_trip(component: Component, params: dict[str, Any]) -> BaseModel:
    """The config validates ``params``, dumps to JSON-able data, and reloads unchanged."""
    config = component.config.model_validate(params)
    dumped = config.model_dump(mode="json")
    assert component.config.model_validate(dumped) == config, "config does not round-trip"
    component.config.model_json_schema()  # must be exportable for `laser schema`
    return config


def check_encoder(encoder: nn.Module, context: BuildContext, rebuild: Any = None) -> None:
    images = torch.rand(2, context.image_channels, context.image_size, context.image_size) * 2 - 1
    images.requires_grad_(True)
    latents = encoder(images)
    size = context.image_size // encoder.downsampling
    assert latents.shape == (2, encoder.latent_dim, size, size), (
        f"encoder output {tuple(latents.shape)} is not (2, latent_dim={encoder.latent_dim}, "
        f"{size}, {size}) for downsampling={encoder.downsampling}"
    )
    _check_backward(latents, images, "encoder")
    _check_state_dict_round_trip(encoder, rebuild, lambda m: m.eval()(images))


def check_decoder(decoder: nn.Module, context: BuildContext, rebuild: Any = None) -> None:
    size = context.image_size // context.downsampling
    latents = torch.randn(2, context.latent_dim, size, size, requires_grad=True)
    images = decoder(latents)
    expected = (2, context.image_channels, context.image_size, context.image_size)
    assert images.shape == expected, f"decoder output {tuple(images.shape)} is not {expected}"
    _check_backward(images, latents, "decoder")
    _check_state_dict_round_trip(decoder, rebuild, lambda m: m.eval()(latents))


def check_bottleneck(
    bottleneck: Bottleneck, dim: int, rebuild: Any = None, size: int = 4, batch: int = 3
) -> None:
    """The bottleneck contract (docs/architecture.md): shapes, gradients to the encoder, the
    Codes form, eval-mode round trip through decode, fp32 codes under autocast, state_dict
    round trip."""
    torch.manual_seed(0)
    z = torch.randn(batch, dim, size, size, requires_grad=True)
    bottleneck.train()
    out = bottleneck(z)
    assert isinstance(out, BottleneckOutput), "forward must return BottleneckOutput"
    assert out.quantized.shape == z.shape, "quantized must have the shape of z"
    assert out.loss.ndim == 0 and torch.isfinite(out.loss), "loss must be a finite scalar"
    _check_backward(out.quantized + 0 * out.loss, z, "bottleneck")

    spec = bottleneck.code_spec()
    _check_codes(out.codes, spec, (batch, size, size))

    bottleneck.eval()
    with torch.no_grad():
        quantized = bottleneck(z).quantized
        codes = bottleneck.encode(z)
        again = bottleneck.encode(z)
        decoded = bottleneck.decode(codes)
    _check_codes(codes, spec, (batch, size, size))
    for a, b in ((codes.indices, again.indices), (codes.values, again.values)):
        assert a is None or torch.equal(a, b), "encode must be deterministic in eval mode"
    assert torch.allclose(decoded, quantized, rtol=1e-4, atol=1e-5), (
        "decode(encode(z)) must equal forward(z).quantized in eval mode; max difference "
        f"{(decoded - quantized).abs().max().item():.3g}"
    )
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = bottleneck.encode(z)
    if mixed.values is not None:
        assert mixed.values.dtype == torch.float32, "code values must be fp32 under autocast"
        assert torch.isfinite(mixed.values).all(), "code values must be finite under autocast"
    if rebuild is not None:
        _check_state_dict_round_trip(bottleneck, rebuild, lambda m: m.eval().encode(z))


def _check_codes(codes: Codes, spec: Any, positions: tuple[int, ...]) -> None:
    depth = len(spec.alphabet_sizes)
    assert codes.indices is not None or codes.values is not None, "codes carry nothing"
    if codes.indices is not None:
        assert codes.indices.dtype == torch.long, "indices must be torch.long"
        assert codes.indices.shape == (*positions, depth), (
            f"indices {tuple(codes.indices.shape)} are not (batch, height, width, depth={depth})"
        )
        limits = torch.tensor(spec.alphabet_sizes)
        assert ((codes.indices >= 0) & (codes.indices < limits)).all(), "index outside alphabet"
    assert (codes.values is not None) == spec.has_values, "values present iff spec.has_values"
    if codes.values is not None and codes.indices is not None:
        assert codes.values.shape == codes.indices.shape, "values must align with indices"


def check_discriminator(discriminator: nn.Module, context: BuildContext) -> None:
    """One logit map per image, and gradients back to the images (the generator needs them)."""
    size = context.image_size
    images = (torch.rand(2, context.image_channels, size, size) * 2 - 1).requires_grad_(True)
    logits = discriminator(images)
    assert logits.shape[0] == 2 and logits.shape[1] == 1, (
        f"discriminator output {tuple(logits.shape)} is not (batch, 1, ...)"
    )
    _check_backward(logits, images, "discriminator")


def check_dataset(splits: DataSplits) -> None:
    for split_name, split in (("train", splits.train), ("val", splits.val)):
        assert len(split) > 0, f"{split_name} split is empty"
        item = split[0]
        image = item["image"]
        expected = (splits.image_channels, splits.image_size, splits.image_size)
        assert image.shape == expected, f"{split_name} image {tuple(image.shape)} != {expected}"
        assert image.dtype == torch.float32, "images must be float32"
        assert image.min() >= -1 and image.max() <= 1, "images must lie in [-1, 1]"
        if splits.num_classes is not None:
            assert 0 <= int(item["label"]) < splits.num_classes, "label outside num_classes"


def _check_backward(output: torch.Tensor, inputs: torch.Tensor, what: str) -> None:
    inputs.grad = None
    output.float().square().sum().backward()
    assert inputs.grad is not None and inputs.grad.abs().sum() > 0, (
        f"no gradient reaches the input of the {what}"
    )
    assert torch.isfinite(inputs.grad).all(), f"non-finite gradient through the {what}"


def _check_state_dict_round_trip(module: nn.Module, rebuild: Any, probe: Any) -> None:
    """A freshly built module that loads ``module``'s state_dict behaves identically."""
    if rebuild is None:
        return
    copy = rebuild()
    copy.load_state_dict(module.state_dict())
    with torch.no_grad():
        a, b = probe(module), probe(copy)
    pairs = [(a.indices, b.indices), (a.values, b.values)] if isinstance(a, Codes) else [(a, b)]
    for x, y in pairs:
        assert x is None or torch.equal(x, y), "a rebuilt module loading state_dict differs"
