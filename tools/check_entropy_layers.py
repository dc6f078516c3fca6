"""Compare plugins/codec/entropy_layers.py with CompressAI 1.2.8, whose modules it replaces.

CompressAI is not a LASER dependency (it requires numpy<2); install it for this check only,
without its dependencies, into a venv that already has torch and numpy:

    .venv/bin/pip install --no-deps compressai==1.2.8
    .venv/bin/python tools/check_entropy_layers.py

Each pair is built from one seed, given randomly perturbed parameters, and the CompressAI state
dict (less its coder buffers) is loaded into LASER's module with strict=True, which checks that
the keys agree. Then the forward outputs, likelihoods, aux loss and input gradients are compared
in training (same noise seed) and eval mode, and the maximal absolute differences printed.
Exits 1 when a difference exceeds TOLERANCE.
"""

from __future__ import annotations

import sys
import warnings

import torch

from laser_plugins.codec import entropy_layers as laser

TOLERANCE = 1e-6
CODER_BUFFERS = ("_offset", "_quantized_cdf", "_cdf_length", "scale_table")


def import_compressai():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        from compressai.entropy_models import EntropyBottleneck, GaussianConditional
        from compressai.layers import GDN
    return EntropyBottleneck, GaussianConditional, GDN


def transplant(reference: torch.nn.Module, module: torch.nn.Module) -> None:
    """Load the reference's state dict, less CompressAI's coder buffers, strictly."""
    state = {k: v for k, v in reference.state_dict().items() if k not in CODER_BUFFERS}
    module.load_state_dict(state, strict=True)


def perturb(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))


def run_both(reference, module, inputs: list[torch.Tensor], seed: int):
    """Each module's outputs on copies of ``inputs``, from one noise seed, and the gradients
    of the summed log-likelihood (or output) with respect to each input."""
    results = []
    for candidate in (reference, module):
        copies = [x.clone().requires_grad_(True) for x in inputs]
        torch.manual_seed(seed)
        outputs = candidate(*copies)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        objective = outputs[-1].log().sum() if len(outputs) == 2 else outputs[0].square().sum()
        objective.backward()
        results.append([o.detach() for o in outputs] + [x.grad for x in copies])
    return results


def report(name: str, reference_results, laser_results, labels: list[str]) -> float:
    worst = 0.0
    for label, expected, actual in zip(labels, reference_results, laser_results, strict=True):
        difference = (expected - actual).abs().max().item()
        worst = max(worst, difference)
        print(f"{name:42s} {label:22s} max |diff| = {difference:.3e}")
    return worst


def main() -> int:
    try:
        EntropyBottleneck, GaussianConditional, GDN = import_compressai()
    except ImportError:
        print(
            "compressai is not importable: pip install --no-deps compressai==1.2.8 (see docstring)"
        )
        return 2
    worst = 0.0

    torch.manual_seed(0)
    reference = EntropyBottleneck(8)
    torch.manual_seed(0)
    module = laser.EntropyBottleneck(8)
    initial = {k: v for k, v in reference.state_dict().items() if k not in CODER_BUFFERS}
    same_init = max((v - module.state_dict()[k]).abs().max().item() for k, v in initial.items())
    print(
        f"{'EntropyBottleneck initial state, one seed':42s} {'':22s} max |diff| = {same_init:.3e}"
    )
    worst = max(worst, same_init)
    perturb(reference)
    transplant(reference, module)
    x = 4 * torch.randn(3, 8, 5, 6)
    for mode in ("train", "eval"):
        reference.train(mode == "train")
        module.train(mode == "train")
        results = run_both(reference, module, [x], seed=1)
        labels = ["values", "likelihoods", "d log-lik / dx"]
        worst = max(worst, report(f"EntropyBottleneck {mode}", *results, labels))
    losses = [m.loss() for m in (reference, module)]
    difference = (losses[0] - losses[1]).abs().item()
    loss = f"{losses[0].item():.6f}"
    print(f"{'EntropyBottleneck aux loss':42s} {loss:22s} max |diff| = {difference:.3e}")
    worst = max(worst, difference)
    grid = torch.arange(-512.0, 513.0).expand(1, 8, 1, -1)
    tails = [m.eval()(grid)[1].detach() for m in (reference, module)]
    difference = (tails[0] - tails[1]).abs().max().item()
    bits = [-torch.log2(t) for t in tails]
    bits_difference = (bits[0] - bits[1]).abs().max().item()
    print(
        f"{'EntropyBottleneck eval on integers -512..512':42s} {'likelihoods':22s} "
        f"max |diff| = {difference:.3e} (in -log2: {bits_difference:.3e})"
    )
    worst = max(worst, difference)

    reference, module = GaussianConditional(None), laser.GaussianConditional()
    transplant(reference, module)
    values = 3 * torch.randn(2, 4, 5, 6)
    scales = torch.exp(2 * torch.randn(2, 4, 5, 6))
    means = torch.randn(2, 4, 5, 6)
    for mode in ("train", "eval"):
        reference.train(mode == "train")
        module.train(mode == "train")
        results = run_both(reference, module, [values, scales, means], seed=2)
        labels = ["values", "likelihoods", "d/dvalues", "d/dscales", "d/dmeans"]
        worst = max(worst, report(f"GaussianConditional {mode}", *results, labels))

    for inverse in (False, True):
        torch.manual_seed(3)
        reference, module = GDN(6, inverse=inverse), laser.GDN(6, inverse=inverse)
        perturb(reference)
        transplant(reference, module)
        results = run_both(reference, module, [torch.randn(2, 6, 5, 5)], seed=4)
        name = "GDN inverse" if inverse else "GDN"
        worst = max(worst, report(name, *results, ["output", "d/dx"]))

    print(f"largest difference {worst:.3e} (tolerance {TOLERANCE:.0e})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
