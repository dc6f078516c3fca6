"""The component contracts as checks, one function per rule set.

The runtime runs the cheap ones on every build (``laser validate``, ``laser run`` and everything
that reopens a run) and the conformance kit, :mod:`laser_core.testing`, runs the same functions
plus the costly ones (gradients, round trips, determinism). Each check raises ContractError
with the broken rule; the caller adds whose component it is and where the recipe uses it.
"""

from __future__ import annotations

import inspect
import math
from numbers import Real
from pathlib import Path
from typing import Any

import torch
from torch import nn

from laser_core.errors import ContractError
from laser_core.plugin.contracts import (
    Bottleneck,
    BottleneckOutput,
    Codes,
    CodeSpec,
    DataSplits,
)
from laser_core.plugin.priors import Prior, SymbolSpec


def require(condition: Any, rule: str) -> None:
    """Raise ContractError(rule) unless ``condition``; unlike ``assert``, never optimised away."""
    if not condition:
        raise ContractError(rule)


def _type_name(value: Any) -> str:
    return type(value).__name__


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check_built(kind: str, built: Any) -> None:
    """What a factory of ``kind`` must return, checked without running it."""
    checks = {
        "encoders": _check_encoder_type,
        "decoders": lambda b: _check_module(b, "a decoder"),
        "bottlenecks": _check_bottleneck_type,
        "discriminators": lambda b: _check_module(b, "a discriminator"),
        "datasets": _check_splits_type,
        "metrics": _check_metric_type,
        "tasks": _check_task_type,
        "priors": _check_prior_type,
    }
    checks[kind](built)


def _check_module(built: Any, what: str) -> None:
    require(
        isinstance(built, nn.Module),
        f"the factory returned {_type_name(built)}, but {what} is a torch.nn.Module",
    )


def _check_encoder_type(encoder: Any) -> None:
    _check_module(encoder, "an encoder")
    for attribute in ("latent_dim", "downsampling"):
        value = getattr(encoder, attribute, None)
        require(
            _positive_int(value),
            f"an encoder has an integer attribute '{attribute}' >= 1; got {value!r}",
        )


def _check_bottleneck_type(bottleneck: Any) -> None:
    require(
        isinstance(bottleneck, Bottleneck),
        f"the factory returned {_type_name(bottleneck)}, not a laser_core.Bottleneck",
    )
    check_code_spec(bottleneck.code_spec())


def check_code_spec(spec: Any) -> None:
    require(isinstance(spec, CodeSpec), f"code_spec() returned {_type_name(spec)}, not a CodeSpec")
    require(
        isinstance(spec.alphabet_sizes, list)
        and all(_positive_int(size) for size in spec.alphabet_sizes),
        f"code_spec().alphabet_sizes is a list of integers >= 1; got {spec.alphabet_sizes!r}",
    )


def _check_splits_type(splits: Any) -> None:
    require(
        isinstance(splits, DataSplits),
        f"the factory returned {_type_name(splits)}, not a laser_core.DataSplits",
    )
    for attribute in ("image_channels", "image_size"):
        value = getattr(splits, attribute)
        require(_positive_int(value), f"DataSplits.{attribute} is an integer >= 1; got {value!r}")


def _check_metric_type(metric: Any) -> None:
    for method in ("per_example", "summarize"):
        require(
            callable(getattr(metric, method, None)),
            f"the factory returned {_type_name(metric)}, which has no {method}() method; a "
            "metric has per_example(images, reconstructions, output) and summarize(values)",
        )


def _check_task_type(task: Any) -> None:
    run = getattr(task, "run", None)
    require(
        callable(run),
        f"the factory returned {_type_name(task)}, which has no run(run_dir) method",
    )
    try:
        inspect.signature(run).bind(Path("."))
    except TypeError:
        raise ContractError("a task's run() takes one argument, the run directory") from None
    except ValueError:  # no signature to read (a builtin): nothing more to check
        pass


def _check_prior_type(prior: Any) -> None:
    require(
        isinstance(prior, Prior),
        f"the factory returned {_type_name(prior)}, not a laser_core.Prior",
    )
    require(
        isinstance(getattr(prior, "spec", None), SymbolSpec),
        "a prior has a 'spec' attribute, the laser_core.SymbolSpec it was built for "
        "(context.symbols)",
    )


def check_prior_log_probs(log_probs: Any, spec: SymbolSpec, batch: int, length: int) -> None:
    """log_probs(tokens, labels): (batch, length, largest_alphabet), each row a normalised
    distribution over its field's alphabet and -inf past it."""
    _check_tensor(log_probs, "log_probs()'s result")
    expected = (batch, length, spec.largest_alphabet)
    require(
        tuple(log_probs.shape) == expected,
        f"log_probs() returned {tuple(log_probs.shape)}, not (batch, length, largest "
        f"alphabet) = {expected}",
    )
    for token in range(length):
        alphabet = spec.alphabet_sizes[spec.field_of(token)]
        row = log_probs[:, token].double()
        require(
            bool(torch.isinf(row[:, alphabet:]).all()),
            f"log_probs() of token {token} is -inf past its field's {alphabet} symbols",
        )
        total = row[:, :alphabet].logsumexp(-1)
        require(
            bool(torch.allclose(total, torch.zeros_like(total), atol=1e-4)),
            f"log_probs() of token {token} sums to probability {total.exp().tolist()}, not 1",
        )


# -- outputs, on a probe -----------------------------------------------------------------------


def _check_tensor(value: Any, what: str) -> torch.Tensor:
    require(isinstance(value, torch.Tensor), f"{what} is a tensor; got {_type_name(value)}")
    return value


def check_encoder_output(encoder: nn.Module, images: torch.Tensor, latents: Any) -> None:
    _check_tensor(latents, "the encoder's output")
    batch, _, height, width = images.shape
    d = encoder.downsampling
    expected = (batch, encoder.latent_dim, height // d, width // d)
    require(
        tuple(latents.shape) == expected,
        f"encoder output {tuple(latents.shape)} is not (batch, latent_dim={encoder.latent_dim}, "
        f"height/{d}, width/{d}) = {expected} for downsampling={d}",
    )
    require(latents.is_floating_point(), f"latents are floating point; got {latents.dtype}")


def check_decoder_output(images: Any, expected: tuple[int, ...]) -> None:
    _check_tensor(images, "the decoder's output")
    require(
        tuple(images.shape) == tuple(expected),
        f"decoder output {tuple(images.shape)} is not {tuple(expected)}",
    )


def check_bottleneck_output(output: Any, z: torch.Tensor, spec: CodeSpec, output_dim: int) -> None:
    """forward(z): a BottleneckOutput whose quantized has z's dtype and shape but for its
    ``output_dim`` channels (z's own for most bottlenecks), a finite scalar loss, codes of the
    spec's form, stats as a dict, and bits, when reported, finite and one per image."""
    require(
        isinstance(output, BottleneckOutput),
        f"forward() returned {_type_name(output)}, not a laser_core.BottleneckOutput",
    )
    quantized = _check_tensor(output.quantized, "BottleneckOutput.quantized")
    expected = (z.shape[0], output_dim, *z.shape[2:])
    require(
        tuple(quantized.shape) == expected and quantized.dtype == z.dtype,
        f"quantized {tuple(quantized.shape)} {quantized.dtype} is not (batch, output_dim, "
        f"height, width) = {expected} in z's dtype {z.dtype}",
    )
    loss = _check_tensor(output.loss, "BottleneckOutput.loss")
    require(loss.ndim == 0, f"loss is a scalar; got shape {tuple(loss.shape)}")
    require(bool(torch.isfinite(loss)), f"loss is finite; got {loss.item()}")
    require(isinstance(output.stats, dict), "BottleneckOutput.stats is a dict of tensors")
    if output.bits is not None:
        bits = _check_tensor(output.bits, "BottleneckOutput.bits")
        require(
            tuple(bits.shape) == (z.shape[0],) and bool(torch.isfinite(bits).all()),
            f"bits are finite, one per image (batch,) = ({z.shape[0]},); got {tuple(bits.shape)}",
        )
    check_codes(output.codes, spec, (z.shape[0], z.shape[2], z.shape[3]))


def check_codes(codes: Any, spec: CodeSpec, positions: tuple[int, ...]) -> None:
    """Codes: indices long (batch, height, width, depth) inside the alphabets; values fp32
    and aligned with the indices, present exactly when the spec says so."""
    require(isinstance(codes, Codes), f"codes are laser_core.Codes; got {_type_name(codes)}")
    require(codes.indices is not None or codes.values is not None, "codes carry nothing")
    depth = len(spec.alphabet_sizes)
    if codes.indices is not None:
        indices = _check_tensor(codes.indices, "Codes.indices")
        require(indices.dtype == torch.long, f"indices are torch.long; got {indices.dtype}")
        require(
            tuple(indices.shape) == (*positions, depth),
            f"indices {tuple(indices.shape)} are not (batch, height, width, depth={depth}) = "
            f"{(*positions, depth)}",
        )
        limits = torch.tensor(spec.alphabet_sizes, device=indices.device)
        require(
            bool(((indices >= 0) & (indices < limits)).all()),
            f"an index lies outside code_spec().alphabet_sizes {spec.alphabet_sizes}",
        )
    require(
        (codes.values is not None) == spec.has_values,
        f"values are present exactly when code_spec().has_values ({spec.has_values})",
    )
    if codes.values is not None:
        values = _check_tensor(codes.values, "Codes.values")
        require(values.dtype == torch.float32, f"code values are float32; got {values.dtype}")
        if codes.indices is not None:
            require(
                values.shape == codes.indices.shape,
                f"values {tuple(values.shape)} align with indices {tuple(codes.indices.shape)}",
            )


def check_discriminator_output(logits: Any, batch: int) -> None:
    _check_tensor(logits, "the discriminator's output")
    require(
        logits.ndim >= 2 and logits.shape[0] == batch and logits.shape[1] == 1,
        f"discriminator output {tuple(logits.shape)} is not (batch={batch}, 1, ...)",
    )


def check_dataset_item(splits: DataSplits, item: Any, split: str) -> None:
    """One example: {"image": float32 (C, H, W) in [-1, 1]} and a label when classes are known."""
    require(
        isinstance(item, dict) and "image" in item,
        f"{split} items are dicts with an 'image'; got {_type_name(item)}",
    )
    image = _check_tensor(item["image"], f"a {split} image")
    expected = (splits.image_channels, splits.image_size, splits.image_size)
    require(tuple(image.shape) == expected, f"{split} image {tuple(image.shape)} != {expected}")
    require(image.dtype == torch.float32, f"images are float32; got {image.dtype}")
    require(
        bool(image.min() >= -1 and image.max() <= 1),
        f"images lie in [-1, 1]; a {split} image spans "
        f"[{image.min().item():.3g}, {image.max().item():.3g}]",
    )
    if splits.num_classes is not None:
        label = item.get("label")
        require(
            label is not None and 0 <= int(label) < splits.num_classes,
            f"{split} label {label!r} is not in 0..{splits.num_classes - 1} (num_classes)",
        )


def check_metric_values(values: Any, batch: int) -> None:
    _check_tensor(values, "per_example()'s result")
    require(
        values.ndim >= 1 and values.shape[0] == batch,
        f"per_example() returns (batch={batch}, ...); got {tuple(values.shape)}",
    )


def check_metric_summary(summary: Any) -> None:
    require(isinstance(summary, dict), f"summarize() returns a dict; got {_type_name(summary)}")
    for key, value in summary.items():
        require(
            isinstance(key, str) and isinstance(value, Real) and not isinstance(value, bool),
            f"summarize() maps names to numbers; got {key!r}: {value!r}",
        )
        require(math.isfinite(value), f"summarize() value {key!r} is finite; got {value}")
