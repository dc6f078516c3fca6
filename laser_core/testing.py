"""Conformance checks any plugin author runs against their components.

    from laser_core.testing import check_component, check_plugin
    def test_my_bottleneck_conforms():
        check_component("bottlenecks", "my-bottleneck", {"atoms": 64})
    def test_every_component_of_my_plugin_conforms():
        check_plugin(my_package.plugin, {"my-bottleneck": {"atoms": 64}})

``check_component`` covers every kind: encoders, decoders, bottlenecks, discriminators,
datasets, metrics, tasks and priors. Each check raises ``laser_core.errors.ContractError`` (an
AssertionError) saying which rule broke. The rules are the ones LASER itself enforces when it
builds a recipe (``laser_core.plugin.checks``); this kit adds the costly ones: gradients,
determinism, state_dict and decode round trips.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from laser_core.ops.frequencies import PRECISION, frequency_bits
from laser_core.plugin.checks import (
    check_bottleneck_output,
    check_built,
    check_codes,
    check_dataset_item,
    check_decoder_output,
    check_discriminator_output,
    check_encoder_output,
    check_metric_summary,
    check_metric_values,
    check_prior_log_probs,
    require,
)
from laser_core.plugin.contracts import (
    KINDS,
    Bottleneck,
    BottleneckOutput,
    BuildContext,
    Codes,
    CodeSpec,
    DataSplits,
    EntropyCodedBottleneck,
)
from laser_core.plugin.priors import Prior, SymbolSpec
from laser_core.plugin.registry import Component, Provider, Registry, default_registry

PROBE_SYMBOLS = SymbolSpec(
    grid=(2, 3),
    kinds=("value", "index", "index"),
    slots=(0, 0, 1),
    alphabet_sizes=(4, 5, 3),
    zero_value=2,
    num_classes=3,
)
"""A small spec with every rule in it: a sparse slot (value, then an index that is not coded
where the value is zero), a plain index slot, alphabets of different sizes, classes."""


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
    context = context or BuildContext(
        image_channels=3, image_size=16, latent_dim=8, symbols=PROBE_SYMBOLS
    )
    built = component.factory(config, context)
    check_built(kind, built)

    def rebuild() -> Any:
        return component.factory(config, context)

    checks = {
        "encoders": lambda: check_encoder(built, context, rebuild),
        "decoders": lambda: check_decoder(built, context, rebuild),
        "bottlenecks": lambda: check_bottleneck(built, context.latent_dim, rebuild),
        "datasets": lambda: check_dataset(built),
        "discriminators": lambda: check_discriminator(built, context),
        "metrics": lambda: check_metric(built, context),
        "priors": lambda: check_prior(built, rebuild),
    }
    if kind in checks:
        checks[kind]()
    return built


def check_plugin(
    plugin: object,
    params: dict[str, dict[str, Any]] | None = None,
    context: BuildContext | None = None,
) -> dict[str, Any]:
    """Register ``plugin`` (a plugin module or object) on its own and run
    :func:`check_component` on every component it offers, whatever its kind; ``params`` holds
    each component's recipe keys by name. Returns the built components by name."""
    name = getattr(plugin, "__name__", type(plugin).__name__)
    registry = Registry()
    registry.add_plugin(plugin, Provider(name, name, "test"))
    require(not registry.failures, f"the plugin failed to register: {registry.failures}")
    components = [c for kind in KINDS for c in registry.of_kind(kind)]
    require(components, "the plugin registers no component")
    params = params or {}
    return {
        c.name: check_component(c.kind, c.name, params.get(c.name), context, registry)
        for c in components
    }


def check_config_round_trip(component: Component, params: dict[str, Any]) -> BaseModel:
    """The config validates ``params``, dumps to JSON-able data, and reloads unchanged."""
    config = component.config.model_validate(params)
    dumped = config.model_dump(mode="json")
    require(component.config.model_validate(dumped) == config, "the config does not round-trip")
    component.config.model_json_schema()  # must be exportable for `laser schema`
    return config


def check_encoder(encoder: nn.Module, context: BuildContext, rebuild: Any = None) -> None:
    images = torch.rand(2, context.image_channels, context.image_size, context.image_size) * 2 - 1
    images.requires_grad_(True)
    latents = encoder(images)
    check_encoder_output(encoder, images, latents)
    _check_backward(latents, images, "encoder")
    _check_state_dict_round_trip(encoder, rebuild, lambda m: m.eval()(images))


def check_decoder(decoder: nn.Module, context: BuildContext, rebuild: Any = None) -> None:
    size = context.image_size // context.downsampling
    latents = torch.randn(2, context.latent_dim, size, size, requires_grad=True)
    images = decoder(latents)
    expected = (2, context.image_channels, context.image_size, context.image_size)
    check_decoder_output(images, expected)
    _check_backward(images, latents, "decoder")
    _check_state_dict_round_trip(decoder, rebuild, lambda m: m.eval()(latents))


def check_bottleneck(
    bottleneck: Bottleneck, dim: int, rebuild: Any = None, size: int = 4, batch: int = 3
) -> None:
    """The bottleneck contract: forward's output and codes, gradients to the encoder,
    eval-mode determinism and round trip through decode, fp32 codes under autocast,
    state_dict round trip."""
    check_built("bottlenecks", bottleneck)
    torch.manual_seed(0)
    z = torch.randn(batch, dim, size, size, requires_grad=True)
    spec = bottleneck.code_spec()
    bottleneck.train()
    out = bottleneck(z)
    check_bottleneck_output(out, z, spec, bottleneck.output_dim)
    _check_backward(out.quantized + 0 * out.loss, z, "bottleneck")

    bottleneck.eval()
    with torch.no_grad():
        quantized = bottleneck(z).quantized
        codes = bottleneck.encode(z)
        again = bottleneck.encode(z)
        decoded = bottleneck.decode(codes)
    check_codes(codes, spec, (batch, size, size))
    for a, b in ((codes.indices, again.indices), (codes.values, again.values)):
        require(a is None or torch.equal(a, b), "encode() is deterministic in eval mode")
    require(
        isinstance(decoded, torch.Tensor) and decoded.shape == quantized.shape,
        f"decode(encode(z)) has the shape of z {tuple(z.shape)}",
    )
    require(
        torch.allclose(decoded, quantized, rtol=1e-4, atol=1e-5),
        "decode(encode(z)) equals forward(z).quantized in eval mode; max difference "
        f"{(decoded - quantized).abs().max().item():.3g}",
    )
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = bottleneck.encode(z)
    check_codes(mixed, spec, (batch, size, size))  # values stay fp32 under autocast
    if mixed.values is not None:
        require(torch.isfinite(mixed.values).all(), "code values are finite under autocast")
    if isinstance(bottleneck, EntropyCodedBottleneck) and bottleneck.refinable:
        _check_relaxation(bottleneck, z.detach())
    if rebuild is not None:
        _check_state_dict_round_trip(bottleneck, rebuild, lambda m: m.eval().encode(z))


def _check_relaxation(bottleneck: EntropyCodedBottleneck, z: torch.Tensor) -> None:
    """A refinable bottleneck's ``relaxed`` (what ``laser compress --refine`` optimises):
    differentiable in z when warm; when cold, the latents its stages decode to and the bits
    forward reports in eval."""
    warm = z.clone().requires_grad_(True)
    soft, bits = bottleneck.relaxed(warm, 0.5)
    require(
        soft.shape == (z.shape[0], bottleneck.output_dim, *z.shape[2:])
        and bits.shape == z.shape[:1],
        "relaxed(z) returns the decoder's latents (batch, output_dim, h, w) and bits (batch,)",
    )
    _check_backward(soft.sum() + bits.sum(), warm, "relaxation")
    with torch.no_grad():
        soft, bits = bottleneck.relaxed(z, 1e-3)
        decoded = bottleneck.dequantize(bottleneck.stage_symbols(z))
        eval_bits = bottleneck.eval()(z).bits
    require(
        torch.allclose(soft, decoded.float()),
        "relaxed(z) at a temperature near 0 is dequantize(stage_symbols(z))",
    )
    require(
        eval_bits is not None and torch.allclose(bits, eval_bits.float(), rtol=1e-4),
        "relaxed(z)'s bits at a temperature near 0 are forward(z).bits in eval",
    )


def check_discriminator(discriminator: nn.Module, context: BuildContext) -> None:
    """One logit map per image, and gradients back to the images (the generator needs them)."""
    size = context.image_size
    images = (torch.rand(2, context.image_channels, size, size) * 2 - 1).requires_grad_(True)
    logits = discriminator(images)
    check_discriminator_output(logits, 2)
    _check_backward(logits, images, "discriminator")


def check_dataset(splits: DataSplits) -> None:
    check_built("datasets", splits)
    for split_name in ("train", "val"):
        split = getattr(splits, split_name)
        require(len(split) > 0, f"the {split_name} split is empty")
        check_dataset_item(splits, split[0], split_name)


def check_metric(metric: Any, context: BuildContext, batch: int = 3) -> None:
    """per_example on images, their reconstructions and a bottleneck output of the context's
    code spec gives (batch, ...) values; summarize turns two batches of them into finite
    numbers."""
    check_built("metrics", metric)
    size = context.image_size
    shape = (batch, context.image_channels, size, size)
    generator = torch.Generator().manual_seed(0)
    values = []
    for _ in range(2):
        images = torch.rand(shape, generator=generator) * 2 - 1
        reconstructions = (images + 0.1 * torch.randn(shape, generator=generator)).clamp(-1, 1)
        output = _probe_output(context, batch, generator)
        per_example = metric.per_example(images, reconstructions, output)
        check_metric_values(per_example, batch)
        values.append(per_example)
    check_metric_summary(metric.summarize(torch.cat(values)))


def random_tokens(spec: SymbolSpec, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Tokens long (batch, tokens) inside each field's alphabet, in canonical form (an index
    that is not coded is 0)."""
    fields = spec.token_fields()
    sizes = torch.tensor(spec.alphabet_sizes)[fields]
    tokens = (torch.rand(batch, spec.tokens, generator=generator) * sizes).long()
    return tokens * spec.coded(tokens)


def check_prior(prior: Prior, rebuild: Any = None, batch: int = 4) -> None:
    """The prior contract: normalised causal distributions, a closed-form fit or none, bits
    that agree with the coder's integer frequencies, samples inside the alphabets, state_dict
    round trip."""
    check_built("priors", prior)
    spec = prior.spec
    generator = torch.Generator().manual_seed(0)
    tokens = random_tokens(spec, batch, generator)
    labels = None
    if prior.conditional:
        require(spec.num_classes, "a conditional prior needs a spec with num_classes")
        labels = torch.arange(batch) % spec.num_classes
    prior.fit(tokens, labels)
    prior.eval()
    with torch.no_grad():
        log_probs = prior.log_probs(tokens, labels)
        check_prior_log_probs(log_probs, spec, batch, spec.tokens)
        changed = random_tokens(spec, batch, generator)
        for token in range(1, spec.tokens):
            mixed = torch.cat([tokens[:, :token], changed[:, token:]], 1)
            require(
                torch.allclose(
                    prior.log_probs(mixed, labels)[:, : token + 1],
                    log_probs[:, : token + 1],
                    atol=1e-5,
                ),
                f"log_probs() of tokens up to {token} change with the tokens after them; a "
                "prior's distribution of a token reads only the tokens before it",
            )
        bits = -prior.log_prob(tokens, labels)
        require(bits.shape == (batch,), f"log_prob() returns (batch,); got {tuple(bits.shape)}")
        coded = torch.zeros(batch, dtype=torch.float64)
        for step in prior.coding_steps(tokens, labels):
            require(
                bool((step.frequencies.sum(-1) == 2**PRECISION).all())
                and bool((step.frequencies > 0).all()),
                f"coding step {step.token}: frequencies sum to 2**{PRECISION}, none is 0",
            )
            coded[step.where] += frequency_bits(step.frequencies, tokens[step.where, step.token])
        require(
            torch.allclose(coded, bits.double(), atol=1e-3 * spec.tokens),
            f"-log_prob() {bits.tolist()} bits differ from the coding steps' {coded.tolist()}",
        )
        samples = prior.sample(3, None if labels is None else labels[:3], 0.8, 2, generator)
    require(
        tuple(samples.shape) == (3, spec.tokens) and samples.dtype == torch.long,
        f"sample(3) returns long (3, tokens={spec.tokens}); got {tuple(samples.shape)}",
    )
    sizes = torch.tensor(spec.alphabet_sizes)[spec.token_fields()]
    require(bool(((samples >= 0) & (samples < sizes)).all()), "samples lie in their alphabets")
    require(bool((samples * ~spec.coded(samples) == 0).all()), "uncoded sampled indices are 0")
    _check_state_dict_round_trip(prior, rebuild, lambda m: m.eval().log_probs(tokens, labels))


def _probe_output(context: BuildContext, batch: int, generator: torch.Generator) -> Any:
    """A BottleneckOutput as a bottleneck of ``context.code_spec`` (default: 16 codes) would
    give for latents of the context's shape."""
    spec = context.code_spec or CodeSpec([16])
    side = context.image_size // context.downsampling
    positions = (batch, side, side)
    indices = None
    if spec.alphabet_sizes:
        indices = torch.stack(
            [torch.randint(n, positions, generator=generator) for n in spec.alphabet_sizes], -1
        )
    values = None
    if spec.has_values:
        depth = len(spec.alphabet_sizes) or context.latent_dim
        values = torch.randn((*positions, depth), generator=generator)
    latents = torch.randn(batch, context.latent_dim, side, side, generator=generator)
    return BottleneckOutput(latents, latents.new_zeros(()), Codes(indices, values))


def _check_backward(output: torch.Tensor, inputs: torch.Tensor, what: str) -> None:
    inputs.grad = None
    output.float().square().sum().backward()
    require(
        inputs.grad is not None and inputs.grad.abs().sum() > 0,
        f"gradients reach the input of the {what}",
    )
    require(torch.isfinite(inputs.grad).all(), f"gradients through the {what} are finite")


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
        require(x is None or torch.equal(x, y), "a rebuilt module loading state_dict differs")
