"""Write docs/scaling.md: what one training step of the VQGAN f16 recipe costs per GPU at batch
32 and 256 px, from FLOPs counted on the CPU (torch's FlopCounterMode) and activation memory
measured on the CPU (the tensors autograd saves, under bf16 autocast), and which `accelerate
launch` setup fits which model size.

    python tools/scaling_estimate.py            # about a minute on 2 CPU cores

The step time is FLOPs / (peak bf16 matrix rate x utilisation): the H100 SXM's 989 TFLOP/s
dense bf16 and the H200's measured 790 TFLOP/s (docs/benchmarks.md, device notes), at the
utilisations stated in the table, which are assumptions, not measurements.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from laser_core import load_recipe
from laser_core.assembly.build import build_data, build_discriminator, build_losses, build_model

RECIPE = Path(__file__).parent.parent / "recipes" / "tokenizers" / "vqgan-f16.yaml"
DOC = Path(__file__).parent.parent / "docs" / "scaling.md"
BATCH = 32
PEAKS = {"H100 SXM (989 TFLOP/s bf16 dense)": 989e12, "H200 as measured here (790)": 790e12}
UTILISATIONS = (0.25, 0.4)
BYTES_PER_PARAMETER = 16  # fp32 weight + fp32 gradient + AdamW's two fp32 moments


def _step(model, losses, discriminator, images):
    """One generator step (reconstruction, LPIPS, adversarial term) and one discriminator step,
    forward and backward, as the training loop runs them."""
    reconstructions, output = model(images)
    terms = losses(reconstructions, images)
    generator = sum(terms.values()) + output.loss - discriminator(reconstructions).mean()
    generator.backward()
    critic = discriminator(images).mean() - discriminator(reconstructions.detach()).mean()
    critic.backward()


def measure() -> dict[str, float]:
    overrides = ["data.train_patches=2", "data.val_patches=2", "losses.perceptual_backbone=random"]
    recipe = load_recipe(RECIPE, overrides)
    splits = build_data(recipe)
    model, context = build_model(recipe, splits)
    losses, discriminator = build_losses(recipe, context), build_discriminator(recipe, context)
    images = torch.rand(1, 3, 256, 256) * 2 - 1
    with FlopCounterMode(display=False) as counter:
        _step(model, losses, discriminator, images)
    saved = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += tensor.numel() * tensor.element_size()
        return tensor

    start = time.perf_counter()
    with (
        torch.autocast("cpu", dtype=torch.bfloat16),
        torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
    ):
        _step(model, losses, discriminator, images)
    seconds = time.perf_counter() - start
    parameters = sum(p.numel() for m in (model, discriminator) for p in m.parameters())
    return {
        "flops_per_image": counter.get_total_flops(),
        "activation_bytes_per_image": saved,
        "parameters": parameters,
        "cpu_seconds_per_image": seconds,
        "autoencoder_parameters": sum(p.numel() for p in model.parameters()),
    }


def render(m: dict[str, float]) -> str:
    flops = m["flops_per_image"] * BATCH
    activations = m["activation_bytes_per_image"] * BATCH / 2**30
    states = m["parameters"] * BYTES_PER_PARAMETER / 2**30
    quantities = "\n".join(
        f"| {what} | {value} | {how} |"
        for what, value, how in (
            ("quantity", "value", "how it was obtained"),
            ("---", "---", "---"),
            (
                "parameters (autoencoder + discriminator)",
                f"{m['parameters'] / 1e6:.1f} M ({m['autoencoder_parameters'] / 1e6:.1f} M "
                "autoencoder)",
                "counted",
            ),
            (
                "FLOPs per step",
                f"{flops / 1e12:.2f} TFLOP",
                "torch FlopCounterMode: generator and discriminator steps, forward and "
                f"backward, batch 1, x {BATCH}",
            ),
            (
                "weights, gradients, AdamW state",
                f"{states:.2f} GiB",
                f"{BYTES_PER_PARAMETER} bytes per parameter (fp32 master weights, bf16 autocast)",
            ),
            (
                "activations kept for backward",
                f"{activations:.1f} GiB",
                f"bytes autograd saves under CPU bf16 autocast (an upper bound), x {BATCH}",
            ),
            (
                "total",
                f"{states + activations:.1f} GiB",
                "plus the CUDA context and allocator slack, typically 1-3 GiB",
            ),
            (
                "CPU time per image",
                f"{m['cpu_seconds_per_image']:.1f} s",
                "one bf16 step at batch 1 on this machine's 2 cores; machine- and "
                "load-dependent, for scale only",
            ),
        )
    )
    rows = []
    for name, peak in PEAKS.items():
        for utilisation in UTILISATIONS:
            ms = flops / (peak * utilisation) * 1e3
            rows.append(f"| {name} | {utilisation:.0%} | {ms:.0f} ms | {BATCH / ms * 1e3:.0f} |")
    return f"""# Scaling: when one GPU is not enough

Generated by `python tools/scaling_estimate.py`; do not edit by hand. Figures are estimates for
one training step of [recipes/tokenizers/vqgan-f16.yaml](../recipes/tokenizers/vqgan-f16.yaml)
(taming's f16 VQGAN, 256-pixel images, LPIPS, PatchGAN discriminator) at batch {BATCH} per GPU,
from what was counted on the CPU. Measured GPU figures go in docs/benchmarks.md
(`tools/gpu_check.sh`).

## Per GPU at batch {BATCH}

{quantities}

| GPU | utilisation (assumed) | step time | images / s |
| --- | --- | --- | --- |
{chr(10).join(rows)}

Convolutional autoencoders with attention at one resolution usually reach 25-40% of the matrix
peak; `tools/gpu_check.sh` measures the real figure.

## Which `accelerate launch` setup

- **One GPU** holds this model at batch {BATCH} with room to spare (80 GiB H100, 141 GiB H200):
  plain `laser run`. Larger batches: `train.grad_accum` before more GPUs.
- **DDP** (`accelerate launch --multi_gpu --num_processes N`) when a step must be faster or the
  global batch larger: every GPU holds the whole model ({states:.1f} GiB of weights and optimizer
  state here), gradients are all-reduced, and the codebook's or dictionary's statistics are
  all-reduced by the bottleneck itself. Scaling is near-linear while the per-GPU batch keeps the
  GPU busy (a per-GPU batch of 8 or more at 256 px).
- **Several nodes**: the same DDP across machines (`accelerate config` on each: machine rank,
  main address); worthwhile once one node's 8 GPUs are the bottleneck.
- **FSDP / DeepSpeed ZeRO-3** shard weights, which pays only when weights and optimizer state
  (16 bytes per parameter) crowd a GPU: around a billion parameters and more. LASER's codebook
  and dictionary updates outside autograd need whole parameters, so sharded training is not
  supported; ZeRO-1/2 (optimizer state only) pass through Accelerate unchanged.
"""


def main() -> None:
    torch.manual_seed(0)
    DOC.write_text(render(measure()))
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
