"""Time LASER's sparse coding and vector quantization against the implementations a user
would otherwise pick.

    python tools/bench_bottlenecks.py                                  # the issue configs
    python tools/bench_bottlenecks.py --sections omp --configs 16384x64x512x8   # one OMP config
    python tools/bench_bottlenecks.py --device cuda --backend triton   # the Triton kernels
    python tools/bench_bottlenecks.py --sections vq --vq-configs 65536x64x512

Each config N x M x K x s codes N Gaussian signals of dimension M over a random dictionary of K
unit-norm atoms with sparsity s, in fp32. Every peer is a small function
``peer(signals, dictionary, sparsity) -> Codes``, timed in the same run (best of --repeats), on
the first ``--<peer>-signals`` signals when it would take too long on all N; its time per signal
is then extrapolated, and the table says on how many signals it was measured. Support agreement
(same set of atoms) and relative reconstruction error ‖X - DΓ‖/‖X‖ are measured on the signals
both LASER and the peer coded. Sections (``--sections``) group peers by task.

The ``vq`` section times one training step of a VQ bottleneck, forward and backward, on N
latent vectors of dimension D with K codes (configs N x D x K), against vector-quantize-pytorch's
``VectorQuantize`` (the ``bench`` extra: ``pip install -e '.[bench]'``) and a brute-force torch
VQ with a dense distance matrix and one-hot codes. Every peer starts from the same codebook, so
index agreement is measured on the first step.

The ``fsq`` and ``lfq`` sections time one training step, forward and backward, of LASER's fsq
(configs N x D x levels, e.g. 65536x16x8-6-5) and lfq (N x D x dims, entropy penalty on) against
vector-quantize-pytorch's ``FSQ`` and ``LFQ`` with the same settings (LFQ: entropy weight 0.1,
diversity 1, commitment 0.25, inverse temperature 100). A projection in and out exists when
D differs from the number of quantized dimensions; both start from the same projection
weights, so the fraction of vectors quantized to the same output is measured on the first step.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import orthogonal_mp_gram

from laser_core.ops import batch_omp, reconstruct
from laser_core.plugin.contracts import BuildContext, Codes
from laser_plugins.bottlenecks.codebooks.vq import VectorQuantizer, VQConfig
from laser_plugins.bottlenecks.fsq import FiniteScalarQuantizer, FSQConfig
from laser_plugins.bottlenecks.lfq import LFQConfig, LookupFreeQuantizer

ISSUE_CONFIGS = ["65536x3x16x3", "65536x64x512x8", "16384x256x2048x2", "262144x64x1024x16"]
VQ_CONFIGS = ["65536x64x512", "65536x3x16", "16384x256x2048", "262144x64x1024"]
"""N x D x K: the issue's VQ target first, then the OMP configs' N x M x K."""
FSQ_CONFIGS = ["65536x3x8-6-5", "65536x16x8-6-5", "65536x16x8-8-8-5-5-5"]
"""N x D x levels: 240 codes without and with a projection, then the paper's 2^16 grid."""
LFQ_CONFIGS = ["65536x8x8", "65536x16x10", "16384x16x12"]
"""N x D x dims: 256 codes without a projection, then 1,024 and 4,096 with one."""

Peer = Callable[[torch.Tensor, torch.Tensor, int], Codes]
Result = TypeVar("Result")


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


def research_batch_omp(signals: torch.Tensor, dictionary: torch.Tensor, sparsity: int) -> Codes:
    """Batch-OMP as the research repository runs it (helloimlixin/laser,
    ``src/models/bottleneck.py``, after amzn/sparse-vqvae's ``pyomp``), rewritten here: 1e-4 on
    the Gram diagonal, dense (N, K) coefficients and mask of chosen atoms, the Cholesky factor
    grown by concatenation and solved by two triangular solves, the Gram rows of the whole
    support gathered at every step, and its stopping test (residual energy below 1e-7) read
    back to the host before every step. The energy starts from ‖x‖², as in Rubinstein et al.;
    the repository starts it from ‖x‖, which can stop every signal early."""
    count, atoms = signals.shape[0], dictionary.shape[1]
    device = signals.device
    gram = dictionary.t() @ dictionary + 1e-4 * torch.eye(atoms, device=device)
    initial = signals @ dictionary
    correlations, coefficients = initial, torch.zeros_like(initial)
    chosen = torch.zeros_like(initial, dtype=torch.bool)
    cholesky = torch.ones(count, 1, 1, device=device)
    support = torch.zeros(count, 0, dtype=torch.long, device=device)
    rows = torch.arange(count, device=device)
    residual, delta = signals.square().sum(1), torch.zeros(count, device=device)
    for k in range(1, sparsity + 1):
        if residual.max() <= 1e-7:  # a host read at every step, as there
            break
        atom = (correlations * ~chosen).abs().argmax(1)
        chosen[rows, atom] = True
        if k > 1:
            column = gram[support, atom[:, None]].unsqueeze(2)
            w = torch.linalg.solve_triangular(cholesky, column, upper=False).transpose(1, 2)
            corner = (1 - w.square().sum(2, keepdim=True)).clamp(min=1e-10).sqrt()
            cholesky = torch.cat(
                [
                    torch.cat([cholesky, torch.zeros(count, k - 1, 1, device=device)], 2),
                    torch.cat([w, corner], 2),
                ],
                1,
            )
        support = torch.cat([support, atom[:, None]], 1)
        target = initial.gather(1, support).unsqueeze(2)
        lower = torch.linalg.solve_triangular(cholesky, target, upper=False)
        solution = torch.linalg.solve_triangular(cholesky.transpose(1, 2), lower, upper=True)
        coefficients[rows[:, None], support] = solution.squeeze(2)
        beta = torch.bmm(coefficients.gather(1, support).unsqueeze(1), gram[support]).squeeze(1)
        correlations = initial - beta
        step = (coefficients * beta).sum(1)
        residual, delta = residual + delta - step, step
    return Codes(support, coefficients.gather(1, support))


# -- measuring -------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(
    run: Callable[[], Result], repeats: int, device: torch.device
) -> tuple[float, Result]:
    """Best wall time in seconds of ``repeats`` calls of ``run``, and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        result = run()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best, result


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
        seconds, codes = best_time(
            lambda: peer(signals, dictionary, sparsity), repeats, signals.device
        )
        return Timing(name, len(signals), seconds, codes)
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
        "research repository's Batch-OMP": (research_batch_omp, args.eager_signals),
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


# -- VQ peers --------------------------------------------------------------------------------

VQStep = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""One training step of a VQ bottleneck from latents z (batch, D, height, width) and the
gradient arriving at its output (same shape): forward, then backward of
<output, upstream> + loss. Returns the chosen indices (N,)."""

COMMITMENT_WEIGHT, DECAY = 0.25, 0.99


def laser_vq(codebook: torch.Tensor, update: str, backend: str = "auto") -> VQStep:
    """LASER's vq bottleneck, k-means initialisation and dead-code revival off (the peers have
    neither), starting from ``codebook`` (K, D)."""
    size, dim = codebook.shape
    config = VQConfig(
        codebook_size=size,
        update=update,
        decay=DECAY,
        commitment_weight=COMMITMENT_WEIGHT,
        kmeans_init=False,
        revive_dead_codes=False,
        backend=backend,
    )
    bottleneck = VectorQuantizer(config, BuildContext(latent_dim=dim)).to(codebook.device).train()
    with torch.no_grad():
        bottleneck.codebook.weight.copy_(codebook)
        if update == "ema":
            bottleneck.codebook.embed_sum.copy_(codebook)

    def step(z: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
        bottleneck.zero_grad(set_to_none=True)
        output = bottleneck(z)
        ((output.quantized * upstream).sum() + output.loss).backward()
        return output.codes.indices.flatten()

    return step


def vector_quantize_pytorch_vq(codebook: torch.Tensor, update: str) -> VQStep:
    """lucidrains' ``VectorQuantize`` with the plain straight-through estimator (its default
    for D > 1 is the rotation trick), no k-means init, no dead-code expiry, EMA decay and
    commitment weight as LASER's; update "gradient" learns the codebook through its
    commitment loss (learnable_codebook)."""
    from vector_quantize_pytorch import VectorQuantize

    size, dim = codebook.shape
    ema = update == "ema"
    quantizer = VectorQuantize(
        dim=dim,
        codebook_size=size,
        decay=DECAY,
        commitment_weight=COMMITMENT_WEIGHT,
        kmeans_init=False,
        threshold_ema_dead_code=0,
        rotation_trick=False,
        accept_image_fmap=True,
        ema_update=ema,
        learnable_codebook=not ema,
    )
    quantizer = quantizer.to(codebook.device).train()
    with torch.no_grad():
        quantizer._codebook.embed.copy_(codebook[None])
        quantizer._codebook.embed_avg.copy_(codebook[None])

    def step(z: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
        quantizer.zero_grad(set_to_none=True)
        quantized, indices, loss = quantizer(z)
        ((quantized * upstream).sum() + loss.sum()).backward()
        return indices.flatten()

    return step


def brute_force_vq(codebook: torch.Tensor, update: str) -> VQStep:
    """The textbook step in eager torch: the dense (N, K) distance matrix by ``torch.cdist``,
    argmin, one-hot (N, K) codes times the codebook, and EMA statistics from the one-hot
    matrix; LASER's losses and straight-through estimator."""
    size = len(codebook)
    weight = codebook.clone().requires_grad_(update == "gradient")
    cluster_size, embed_sum = torch.ones(size, device=codebook.device), codebook.clone()

    def step(z: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
        weight.grad = None
        batch, dim, height, width = z.shape
        x = z.permute(0, 2, 3, 1).reshape(-1, dim)
        indices = torch.cdist(x.detach(), weight.detach()).argmin(1)
        one_hot = F.one_hot(indices, size).float()
        codes = one_hot @ weight
        loss = COMMITMENT_WEIGHT * F.mse_loss(x, codes.detach())
        if update == "gradient":
            loss = loss + F.mse_loss(codes, x.detach())
        quantized = (codes + (x - x.detach())).view(batch, height, width, dim).permute(0, 3, 1, 2)
        ((quantized * upstream).sum() + loss).backward()
        if update == "ema":
            with torch.no_grad():
                cluster_size.lerp_(one_hot.sum(0), 1 - DECAY)
                embed_sum.lerp_(one_hot.t() @ x, 1 - DECAY)
                total = cluster_size.sum()
                smoothed = (cluster_size + 1e-5) / (total + size * 1e-5) * total
                weight.copy_(embed_sum / smoothed[:, None])
        return indices

    return step


def _fresh_step(step: VQStep, z: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
    """``step`` with z's gradient cleared first, so that no run adds to the last one's."""
    z.grad = None
    return step(z, upstream)


def vq_section(args: argparse.Namespace, device: torch.device) -> None:
    """A markdown table: each config, each peer's training step, against LASER's vq."""
    peers: dict[str, Callable[[torch.Tensor, str], VQStep]] = {
        f"laser vq ({args.vq_update}, {args.backend})": partial(laser_vq, backend=args.backend),
        f"vector-quantize-pytorch VectorQuantize ({args.vq_update})": vector_quantize_pytorch_vq,
        f"brute-force torch VQ ({args.vq_update})": brute_force_vq,
    }
    try:
        import vector_quantize_pytorch  # noqa: F401
    except ImportError as error:
        print(
            f"vector-quantize-pytorch cannot be imported ({error}), so its rows are left out; "
            "install the benchmark extra with  pip install -e '.[bench]'  to compare with it.\n",
            flush=True,
        )
        peers = {k: peer for k, peer in peers.items() if peer is not vector_quantize_pytorch_vq}
    print(
        "| config N x D x K | implementation | ns / vector | LASER speed-up "
        "| index agreement with LASER |\n| --- | --- | --- | --- | --- |",
        flush=True,
    )
    for config in args.vq_configs:
        count, dim, size = (int(x) for x in config.split("x"))
        count = max(256, int(count * args.n_scale)) // 256 * 256  # batches of 16 x 16 latents
        generator = torch.Generator().manual_seed(0)
        codebook = torch.randn(size, dim, generator=generator).to(device)
        z = torch.randn(count // 256, dim, 16, 16, generator=generator).to(device)
        upstream = torch.randn(z.shape, generator=generator).to(device)
        z.requires_grad_(True)
        name = f"{count}x{dim}x{size}"
        laser = None  # LASER's ns per vector and first indices, the reference of the rows below
        for position, (peer_name, make) in enumerate(peers.items()):
            try:
                step = make(codebook, args.vq_update)
                run = partial(_fresh_step, step, z, upstream)
                first = run().cpu()  # from the shared codebook; also the warm-up
                seconds, _ = best_time(run, args.repeats, device)
            except torch.OutOfMemoryError:
                print(f"| {name} | {peer_name} | out of memory | | |", flush=True)
                continue
            ns = seconds / count * 1e9
            if position == 0:
                laser = (ns, first)
            cells = ["", ""]
            if laser is not None and position > 0:
                agreement = (first == laser[1]).float().mean().item()
                cells = [f"{ns / laser[0]:.1f}x", f"{agreement:.4f}"]
            print(f"| {name} | {peer_name} | {ns:,.0f} | {' | '.join(cells)} |", flush=True)


# -- FSQ and LFQ peers ----------------------------------------------------------------------

ImplicitStep = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""One training step from latents z (batch, D, height, width) and the gradient arriving at the
output: forward, then backward of <output, upstream> + loss. Returns the output, detached."""


def _copy_projections(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """The peer's projections in and out take LASER's weights (both are nn.Linear or Identity)."""
    for name in ("project_in", "project_out"):
        target.get_submodule(name).load_state_dict(source.get_submodule(name).state_dict())


def _laser_step(bottleneck: torch.nn.Module) -> ImplicitStep:
    def step(z: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
        bottleneck.zero_grad(set_to_none=True)
        output = bottleneck(z)
        ((output.quantized * upstream).sum() + output.loss).backward()
        return output.quantized.detach()

    return step


def laser_fsq(dim: int, size: str, device: torch.device) -> tuple[ImplicitStep, torch.nn.Module]:
    levels = [int(level) for level in size.split("-")]
    config, context = FSQConfig(levels=levels), BuildContext(latent_dim=dim)
    bottleneck = FiniteScalarQuantizer(config, context).to(device).train()
    return _laser_step(bottleneck), bottleneck


def vector_quantize_pytorch_fsq(dim: int, size: str, laser: torch.nn.Module) -> ImplicitStep:
    from vector_quantize_pytorch import FSQ

    quantizer = FSQ(levels=[int(level) for level in size.split("-")], dim=dim)
    _copy_projections(laser, quantizer)
    quantizer = quantizer.to(next(iter(laser.buffers())).device).train()

    def step(z: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
        quantizer.zero_grad(set_to_none=True)
        quantized, _ = quantizer(z)
        (quantized * upstream).sum().backward()
        return quantized.detach()

    return step


def laser_lfq(dim: int, size: str, device: torch.device) -> tuple[ImplicitStep, torch.nn.Module]:
    config = LFQConfig(dims=int(size), commitment_weight=0.25)
    bottleneck = LookupFreeQuantizer(config, BuildContext(latent_dim=dim)).to(device).train()
    return _laser_step(bottleneck), bottleneck


def vector_quantize_pytorch_lfq(dim: int, size: str, laser: torch.nn.Module) -> ImplicitStep:
    from vector_quantize_pytorch import LFQ

    quantizer = LFQ(
        dim=dim,
        codebook_size=2 ** int(size),
        entropy_loss_weight=0.1,
        diversity_gamma=1.0,
        commitment_loss_weight=0.25,
    )
    _copy_projections(laser, quantizer)
    quantizer = quantizer.to(next(iter(laser.buffers())).device).train()

    def step(z: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
        quantizer.zero_grad(set_to_none=True)
        quantized, _, loss = quantizer(z)
        ((quantized * upstream).sum() + loss).backward()
        return quantized.detach()

    return step


IMPLICIT_PEERS = {
    "fsq": (laser_fsq, "vector-quantize-pytorch FSQ", vector_quantize_pytorch_fsq),
    "lfq": (laser_lfq, "vector-quantize-pytorch LFQ", vector_quantize_pytorch_lfq),
}


def implicit_section(kind: str, args: argparse.Namespace, device: torch.device) -> None:
    """A markdown table: each config, LASER's fsq or lfq training step and the peer's."""
    make_laser, peer_name, make_peer = IMPLICIT_PEERS[kind]
    try:
        import vector_quantize_pytorch  # noqa: F401
    except ImportError as error:
        print(
            f"vector-quantize-pytorch cannot be imported ({error}); install the benchmark "
            "extra with  pip install -e '.[bench]'",
            flush=True,
        )
        return
    print(
        f"| config N x D x {'levels' if kind == 'fsq' else 'dims'} | implementation "
        "| ns / vector | LASER speed-up | same output as LASER |\n| --- | --- | --- | --- | --- |",
        flush=True,
    )
    for config in getattr(args, f"{kind}_configs"):
        count, dim, size = config.split("x")
        count, dim = max(256, int(int(count) * args.n_scale)) // 256 * 256, int(dim)
        generator = torch.Generator().manual_seed(0)
        z = torch.randn(count // 256, dim, 16, 16, generator=generator).to(device)
        upstream = torch.randn(z.shape, generator=generator).to(device)
        z.requires_grad_(True)
        name = f"{count}x{dim}x{size}"
        laser_step, laser = make_laser(dim, size, device)
        steps = {f"laser {kind}": laser_step, peer_name: make_peer(dim, size, laser)}
        reference = None
        for position, (label, step) in enumerate(steps.items()):
            run = partial(_fresh_step, step, z, upstream)
            first = run().cpu()  # from the same projections; also the warm-up
            seconds, _ = best_time(run, args.repeats, device)
            ns = seconds / count * 1e9
            cells = ["", ""]
            if position == 0:
                reference = (ns, first)
            else:
                same = (first - reference[1]).abs().amax(1).flatten() < 1e-5
                cells = [f"{ns / reference[0]:.1f}x", f"{same.float().mean().item():.4f}"]
            print(f"| {name} | {label} | {ns:,.0f} | {' | '.join(cells)} |", flush=True)


SECTIONS: dict[str, Callable[[argparse.Namespace, torch.device], None]] = {
    "omp": omp_section,
    "vq": vq_section,
    "fsq": partial(implicit_section, "fsq"),
    "lfq": partial(implicit_section, "lfq"),
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


def comma_list(text: str) -> list[str]:
    """An option value such as ``a,b,c`` as its items."""
    return text.split(",")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    config_options = {
        "--configs": (
            ISSUE_CONFIGS,
            "NxMxKxs for the omp section (default: the four issue-5 configs)",
        ),
        "--vq-configs": (VQ_CONFIGS, "NxDxK for the vq section (default: the issue-5 configs)"),
        "--fsq-configs": (FSQ_CONFIGS, "NxDxLEVELS for the fsq section, levels joined by '-'"),
        "--lfq-configs": (LFQ_CONFIGS, "NxDxDIMS for the lfq section"),
    }
    for option, (default, shapes) in config_options.items():
        parser.add_argument(
            option, type=comma_list, default=default, help=f"comma-separated {shapes}"
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
    parser.add_argument(
        "--vq-update",
        choices=["ema", "gradient"],
        default="ema",
        help="how every VQ peer learns its codebook: EMA statistics or the codebook loss",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sections", type=comma_list, default=list(SECTIONS))
    args = parser.parse_args()
    device = torch.device(args.device)
    print(machine(device), flush=True)
    for section in args.sections:
        print(f"\n## {section}\n", flush=True)
        SECTIONS[section](args, device)


if __name__ == "__main__":
    main()
