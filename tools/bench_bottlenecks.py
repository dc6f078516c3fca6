"""Time LASER's sparse coding against the implementations a user would otherwise pick.

    python tools/bench_bottlenecks.py                                  # the four issue configs
    python tools/bench_bottlenecks.py --configs 16384x64x512x8         # one config, on the CPU
    python tools/bench_bottlenecks.py --device cuda --backend triton   # the Triton kernel

Each config N x M x K x s codes N Gaussian signals of dimension M over a random dictionary of K
unit-norm atoms with sparsity s, in fp32. Every peer is a small function
``peer(signals, dictionary, sparsity) -> Codes``, timed in the same run (best of --repeats), on
the first ``--<peer>-signals`` signals when it would take too long on all N; its time per signal
is then extrapolated, and the table says on how many signals it was measured. Support agreement
(same set of atoms) and relative reconstruction error ‖X - DΓ‖/‖X‖ are measured on the signals
both LASER and the peer coded. Sections (``--sections``) group peers by task; a VQ section joins
``SECTIONS`` the same way.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import orthogonal_mp_gram

from laser_core.components import Codes
from laser_core.ops import batch_omp, reconstruct

ISSUE_CONFIGS = ["65536x3x16x3", "65536x64x512x8", "16384x256x2048x2", "262144x64x1024x16"]

Peer = Callable[[torch.Tensor, torch.Tensor, int], Codes]


@dataclass
class Timing:
    peer: str
    signals: int
    seconds: float | None  # None: the peer failed (out of memory), see note
    codes: Codes | None
    note: str = ""

    @property
    def ns_per_signal(self) -> float | None:
        return None if self.seconds is None else self.seconds / self.signals * 1e9


# -- OMP peers -------------------------------------------------------------------------------


def laser_omp(backend: str) -> Peer:
    def peer(signals: torch.Tensor, dictionary: torch.Tensor, sparsity: int) -> Codes:
        return batch_omp(signals, dictionary, sparsity, backend=backend)

    return peer


def sklearn_omp(signals: torch.Tensor, dictionary: torch.Tensor, sparsity: int) -> Codes:
    """scikit-learn's Gram-based OMP on the CPU in fp32, one signal after another inside."""
    d = dictionary.cpu().numpy()
    gram = d.T @ d
    with warnings.catch_warnings():  # "ended prematurely" when M <= s: exact fits, as ours
        warnings.simplefilter("ignore", RuntimeWarning)
        coefficients = orthogonal_mp_gram(
            gram, d.T @ signals.cpu().numpy().T, n_nonzero_coefs=sparsity
        )
    coefficients = torch.from_numpy(np.ascontiguousarray(coefficients.T))
    indices = coefficients.abs().topk(sparsity, dim=1).indices
    return Codes(indices, coefficients.gather(1, indices))


def eager_batch_omp(signals: torch.Tensor, dictionary: torch.Tensor, sparsity: int) -> Codes:
    """Batch-OMP as written in Rubinstein, Zibulevsky & Elad (2008), Algorithm 3, batched over
    signals in eager torch: the straightforward translation, kept here as the baseline. It
    gathers the Gram rows of the whole support, (N, k, K), at every step k."""
    count = signals.shape[0]
    gram = dictionary.t() @ dictionary
    initial = signals @ dictionary  # α⁰ = Dᵀx
    correlations = initial.clone()
    indices = torch.zeros(count, sparsity, dtype=torch.long, device=signals.device)
    cholesky = torch.zeros(count, sparsity, sparsity, device=signals.device)
    cholesky[:, 0, 0] = 1
    for k in range(sparsity):
        atom = correlations.abs().argmax(1)
        indices[:, k] = atom
        if k > 0:
            column = gram[indices[:, :k], atom[:, None]].unsqueeze(2)
            w = torch.linalg.solve_triangular(cholesky[:, :k, :k], column, upper=False)
            cholesky[:, k, :k] = w.squeeze(2)
            cholesky[:, k, k] = (1 - w.square().sum((1, 2))).sqrt()
        support = indices[:, : k + 1]
        target = initial.gather(1, support).unsqueeze(2)
        gamma = torch.cholesky_solve(target, cholesky[:, : k + 1, : k + 1]).squeeze(2)
        beta = torch.bmm(gamma.unsqueeze(1), gram[support]).squeeze(1)  # G_I γ_I
        correlations = initial - beta
    return Codes(indices, gamma)


# -- measuring -------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_peer(
    name: str,
    peer: Peer,
    signals: torch.Tensor,
    dictionary: torch.Tensor,
    sparsity: int,
    repeats: int,
) -> Timing:
    """Best wall time of ``repeats`` runs after one warm-up on a few signals."""
    try:
        peer(signals[:64], dictionary, sparsity)
        best, codes = float("inf"), None
        for _ in range(repeats):
            synchronize(signals.device)
            start = time.perf_counter()
            codes = peer(signals, dictionary, sparsity)
            synchronize(signals.device)
            best = min(best, time.perf_counter() - start)
        return Timing(name, len(signals), best, codes)
    except torch.OutOfMemoryError:
        return Timing(name, len(signals), None, None, "out of memory")


def support_agreement(a: Codes, b: Codes) -> float:
    """Fraction of signals whose sets of atoms with non-zero coefficients are equal."""
    count = min(len(a.indices), len(b.indices))

    def sets(codes: Codes) -> torch.Tensor:
        indices, values = codes.indices[:count].cpu(), codes.values[:count].cpu()
        marked = torch.where(values != 0, indices, -1)
        return marked.sort(1).values

    return (sets(a) == sets(b)).all(1).float().mean().item()


def relative_error(signals: torch.Tensor, codes: Codes, dictionary: torch.Tensor) -> float:
    signals = signals[: len(codes.indices)].cpu()
    residual = signals - reconstruct(codes.map(lambda t: t.cpu()), dictionary.cpu())
    return (residual.norm() / signals.norm()).item()


# -- sections --------------------------------------------------------------------------------


def omp_section(args: argparse.Namespace, device: torch.device) -> None:
    """A markdown table: each config, each peer, against LASER's batch_omp."""
    peers: dict[str, tuple[Peer, int | None]] = {
        f"laser batch_omp ({args.backend})": (laser_omp(args.backend), None),
        "eager Batch-OMP (torch)": (eager_batch_omp, args.eager_signals),
        "scikit-learn orthogonal_mp_gram": (sklearn_omp, args.sklearn_signals),
    }
    print(
        "| config N x M x K x s | implementation | signals timed | ns / signal | LASER speed-up "
        "| support agreement with LASER | relative error |\n"
        "| --- | --- | --- | --- | --- | --- | --- |",
        flush=True,
    )
    for config in args.configs:
        count, dim, atoms, sparsity = (int(x) for x in config.split("x"))
        count = max(64, int(count * args.n_scale))
        generator = torch.Generator().manual_seed(0)
        dictionary = torch.randn(dim, atoms, generator=generator)
        dictionary /= dictionary.norm(dim=0)
        signals = torch.randn(count, dim, generator=generator)
        timings = []
        for name, (peer, limit) in peers.items():
            on_cpu = peer is sklearn_omp
            subset = signals[: limit or count]
            where = torch.device("cpu") if on_cpu else device
            timings.append(
                time_peer(
                    name,
                    peer,
                    subset.to(where),
                    dictionary.to(where),
                    sparsity,
                    1 if limit else args.repeats,
                )
            )
        for timing in timings:
            name = f"{count}x{dim}x{atoms}x{sparsity}"
            print(_row(name, timing, timings[0], signals, dictionary), flush=True)


def _row(config: str, timing: Timing, laser: Timing, signals, dictionary) -> str:
    if timing.seconds is None or laser.seconds is None:
        return f"| {config} | {timing.peer} | {timing.signals} | {timing.note} | | | |"
    speedup = "" if timing is laser else f"{timing.ns_per_signal / laser.ns_per_signal:.1f}x"
    agreement = "" if timing is laser else f"{support_agreement(timing.codes, laser.codes):.4f}"
    error = relative_error(signals, timing.codes, dictionary)
    return (
        f"| {config} | {timing.peer} | {timing.signals} | {timing.ns_per_signal:,.0f} "
        f"| {speedup} | {agreement} | {error:.4f} |"
    )


SECTIONS: dict[str, Callable[[argparse.Namespace, torch.device], None]] = {
    "omp": omp_section,
}


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    lines = [
        f"- CPU: {cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        f"- torch {torch.__version__}, Python {platform.python_version()}",
        f"- load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    if device.type == "cuda":
        lines.append(f"- GPU: {torch.cuda.get_device_name(device)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--configs",
        type=lambda s: s.split(","),
        default=ISSUE_CONFIGS,
        help="comma-separated NxMxKxs (default: the four issue-5 configs)",
    )
    parser.add_argument(
        "--n-scale",
        type=float,
        default=1.0,
        help="multiply every N by this, e.g. 0.25 on a small CPU",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backend", choices=["auto", "torch", "triton"], default="auto")
    parser.add_argument(
        "--sklearn-signals",
        type=int,
        default=512,
        help="scikit-learn codes only this many signals; time extrapolated",
    )
    parser.add_argument(
        "--eager-signals",
        type=int,
        default=None,
        help="the eager baseline codes only this many signals (default: all)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sections", type=lambda s: s.split(","), default=list(SECTIONS))
    args = parser.parse_args()
    device = torch.device(args.device)
    print(machine(device), flush=True)
    for section in args.sections:
        print(f"\n## {section}\n", flush=True)
        SECTIONS[section](args, device)


if __name__ == "__main__":
    main()
