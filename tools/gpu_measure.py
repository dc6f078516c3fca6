"""The measurements of tools/gpu_check.sh, one section per call, each written as JSON.

    python tools/gpu_measure.py omp --out gpu-check/omp.json            # on CUDA
    python tools/gpu_measure.py omp --out /tmp/omp.json --dry-run       # tiny shapes, on the CPU
    python tools/gpu_measure.py collect gpu-check                       # -> gpu_check.json

Sections, every ratio measured in the same process as the rows it compares:

- ``omp``: LASER's ``batch_omp`` (backend auto, what a user gets) against the eager Batch-OMP
  and the research repository's algorithm (tools/bench_bottlenecks.py), with LASER's peak memory;
- ``vq``: one VQ training step, forward and backward, with the Triton and the torch
  nearest-code search, against vector-quantize-pytorch's ``VectorQuantize``;
- ``sweeps``: the K-SVD and online dictionary sweeps as one captured CUDA graph against eager
  launches (tools/gpu_dictionary_sweeps.py);
- ``vqgan``: bf16 VQGAN f16 training, images per second and peak memory, by LASER's training
  loop and by a hand-written loop of the same model, losses and data;
- ``syncs``: ten training steps of the VQ, OMP, K-SVD and VQGAN recipes under
  ``torch.cuda.set_sync_debug_mode("warn")`` (on the CPU: tests/sync_counter.py), every host
  sync with its step and file:line.

``--dry-run`` runs the same code at tiny shapes on the CPU (the Triton kernels under the
interpreter), so that the script is tested before a GPU runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
OMP_SHAPES = ["65536x64x512x8", "65536x16x256x4", "16384x256x2048x16", "16384x256x4096x32"]
"""N x M x K x s: the issue's target first, then up to latent 256, 4096 atoms, sparsity 32."""
VQ_SHAPES = ["65536x64x512", "65536x16x1024", "16384x256x2048", "65536x64x8192"]
"""N x D x K."""
DRY_OMP_SHAPES = ["256x16x64x4", "128x32x128x8"]
DRY_VQ_SHAPES = ["256x8x32", "256x16x64"]
SYNC_RECIPES = {
    "vq": "recipes/quickstart.yaml",
    "omp": "recipes/omp.yaml",
    "ksvd": "recipes/ksvd.yaml",
    "vqgan": "recipes/tokenizers/vqgan-f16.yaml",
}
SYNC_STEPS, LOG_EVERY = 10, 5
"""Steps 5 and 10 log (10 also validates and checkpoints): the others should wait on nothing."""


def parse_shape(text: str, names: str) -> list[int]:
    """ "65536x64x512x8" -> [65536, 64, 512, 8]; refuses an OMP shape whose sparsity exceeds
    its dimension (OMP cannot pick more independent atoms than that)."""
    values = [int(v) for v in text.split("x")]
    if len(values) != len(names.split()):
        raise SystemExit(f"shape {text!r}: expected {' x '.join(names.split())}")
    if len(values) == 4 and values[3] > min(values[1], values[2]):
        raise SystemExit(f"OMP shape {text!r}: sparsity {values[3]} exceeds the dimension")
    return values


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_seconds(run: Callable[[], Any], device: torch.device, repeats: int) -> float:
    run()  # warm-up: compiles kernels, captures graphs
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


@contextmanager
def peak_memory(device: torch.device, record: dict[str, Any]):
    """Put the peak memory above what was allocated before, in GiB, into ``record``."""
    if device.type != "cuda":
        yield
        return
    synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    yield
    synchronize(device)
    record["peak_gib"] = (torch.cuda.max_memory_allocated(device) - before) / 2**30


# -- sections -------------------------------------------------------------------------------


def omp(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    from bench_bottlenecks import (
        eager_batch_omp,
        relative_error,
        research_batch_omp,
        support_agreement,
    )

    from laser_core.ops import batch_omp

    peers = {
        "laser batch_omp (auto)": partial(batch_omp, backend="auto"),
        "eager Batch-OMP": eager_batch_omp,
        "research repository Batch-OMP": research_batch_omp,
    }
    rows = []
    for shape in args.shapes or (DRY_OMP_SHAPES if args.dry_run else OMP_SHAPES):
        count, dim, atoms, sparsity = parse_shape(shape, "N M K s")
        generator = torch.Generator().manual_seed(0)
        dictionary = torch.nn.functional.normalize(
            torch.randn(dim, atoms, generator=generator), dim=0
        ).to(device)
        signals = torch.randn(count, dim, generator=generator).to(device)
        laser = None
        for name, peer in peers.items():
            row: dict[str, Any] = {"shape": shape, "implementation": name}
            try:
                with peak_memory(device, row):
                    codes = peer(signals, dictionary, sparsity)
                run = partial(peer, signals, dictionary, sparsity)
                seconds = best_seconds(run, device, args.repeats)
            except torch.OutOfMemoryError:
                rows.append({**row, "note": "out of memory"})
                continue
            row["ns_per_signal"] = seconds / count * 1e9
            row["relative_error"] = relative_error(signals, codes, dictionary)
            if laser is None:
                laser = (row["ns_per_signal"], codes)
            else:
                row["laser_speedup"] = row["ns_per_signal"] / laser[0]
                row["support_agreement"] = support_agreement(codes, laser[1])
            rows.append(row)
            print(row, flush=True)
    return rows


def vq(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    from bench_bottlenecks import _fresh_step, laser_vq, vector_quantize_pytorch_vq

    steps = {
        "laser vq (triton nearest code)": partial(laser_vq, update="ema", backend="triton"),
        "laser vq (torch nearest code)": partial(laser_vq, update="ema", backend="torch"),
        "vector-quantize-pytorch VectorQuantize": partial(vector_quantize_pytorch_vq, update="ema"),
    }
    rows = []
    for shape in args.shapes or (DRY_VQ_SHAPES if args.dry_run else VQ_SHAPES):
        count, dim, size = parse_shape(shape, "N D K")
        generator = torch.Generator().manual_seed(0)
        codebook = torch.randn(size, dim, generator=generator).to(device)
        z = torch.randn(count // 256, dim, 16, 16, generator=generator).to(device)
        upstream = torch.randn(z.shape, generator=generator).to(device)
        z.requires_grad_(True)
        peer_ns = None
        measured = []
        for name, make in steps.items():
            row: dict[str, Any] = {"shape": shape, "implementation": name}
            try:
                run = partial(_fresh_step, make(codebook), z, upstream)
                with peak_memory(device, row):
                    run()
                row["ns_per_vector"] = best_seconds(run, device, args.repeats) / count * 1e9
            except torch.OutOfMemoryError:
                row["note"] = "out of memory"
            except ImportError as error:  # the wheel check makes sure of it on the GPU
                row["note"] = f"not installed ({error})"
            measured.append(row)
            if name.startswith("vector-quantize-pytorch"):
                peer_ns = row.get("ns_per_vector")
        for row in measured:  # the peer's time over each: > 1 where LASER is faster
            if peer_ns and "ns_per_vector" in row and row is not measured[-1]:
                row["speedup_over_peer"] = peer_ns / row["ns_per_vector"]
            print(row, flush=True)
        rows += measured
    return rows


def sweeps(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    from gpu_dictionary_sweeps import SHAPES, rows

    shapes = [(256, 8, 16, 2), (128, 16, 32, 4)] if args.dry_run else SHAPES
    found = []
    for shape in shapes:
        for row in rows(*shape, device):
            row["eager_over_graph"] = row["eager_ms"] / row["graph_ms"]
            found.append(row)
            print(row, flush=True)
    return found


def _overrides(dry_run: bool, steps: int) -> list[str]:
    """The VQGAN f16 recipe as timed: fixed-size random-backbone LPIPS, the discriminator from
    the middle on; tiny and fp32 on the CPU."""
    common = [
        f"train.steps={steps}",
        "train.eval_every=0",
        "train.checkpoint_every=0",
        "losses.perceptual_backbone=random",
        "metrics=[mse]",
        f"discriminator.start_step={steps // 2}",
    ]
    if dry_run:
        return [
            *common,
            "data.size=32",
            "data.batch_size=2",
            "data.train_patches=8",
            "data.val_patches=2",
            *[
                f"{block}.{key}"
                for block in ("encoder", "decoder")
                for key in ("ch=32", "ch_mult=[1,1]", "num_res_blocks=1", "attn_resolutions=[]")
            ],
            "encoder.z_channels=8",
            "decoder.z_channels=8",
            "encoder.latent_dim=8",
            "bottleneck.codebook_size=16",
            "discriminator.channels=8",
            "train.precision=no",
        ]
    return [*common, "data.train_patches=1024", "data.val_patches=16"]


def vqgan(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    from laser_core.recipes.model import load_recipe
    from laser_core.training import train as training

    steps = 4 if args.dry_run else 200
    recipe_path = REPO / "recipes/tokenizers/vqgan-f16.yaml"
    overrides = [*_overrides(args.dry_run, steps), f"train.log_every={steps // 4}"]
    recipe = load_recipe(recipe_path, overrides)
    run_dir = Path(args.out).with_suffix("") / "vqgan-f16"
    shutil.rmtree(run_dir, ignore_errors=True)  # this tool's own run of an earlier call
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    training.train(recipe, run_dir)
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    # the second half of the steps: the discriminator trains there, start-up is past
    timed = [r for r in logged if r.get("split") == "train" and r.get("step", 0) > steps // 2]
    laser = {
        "images_per_second": sum(r["images_per_second"] for r in timed) / len(timed),
        "peak_gib": max((r.get("max_memory_gib", 0.0) for r in logged), default=0.0),
    }
    hand = hand_written_vqgan(load_recipe(recipe_path, overrides), device, steps)
    result = {
        "recipe": "recipes/tokenizers/vqgan-f16.yaml",
        "overrides": overrides,
        "precision": recipe.train.precision,
        "batch_size": recipe.data.config.batch_size,
        "laser": laser,
        "hand_written": hand,
        "laser_over_hand_written": laser["images_per_second"] / hand["images_per_second"],
    }
    print(result, flush=True)
    return result


def hand_written_vqgan(recipe: Any, device: torch.device, steps: int) -> dict[str, float]:
    """The same model, losses, optimizers and batches in a plain PyTorch loop: bf16 autocast,
    AdamW for the autoencoder and the discriminator, VQGAN's adaptive weight and hinge losses
    from ``steps // 2``; images per second over the second half, and peak memory."""
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    from laser_core.training.adversarial import adaptive_weight, last_weight
    from laser_core.training.build import (
        build_data,
        build_discriminator,
        build_losses,
        build_model,
    )

    torch.manual_seed(recipe.seed)
    splits = build_data(recipe)
    model, context = build_model(recipe, splits)
    model.to(device).train()
    losses = build_losses(recipe, context).to(device)
    discriminator = build_discriminator(recipe, context).to(device).train()
    train = recipe.train
    optimizer = torch.optim.AdamW(model.parameters(), lr=train.lr, betas=train.betas)
    d_optimizer = torch.optim.AdamW(discriminator.parameters(), lr=train.lr, betas=train.betas)
    last = last_weight(model.decoder, recipe.decoder.name)
    data = recipe.data.config
    loader = DataLoader(
        splits.train,
        batch_size=data.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=data.loader_workers(device),
        pin_memory=data.pins_memory(device),
    )
    autocast = partial(
        torch.autocast, device.type, torch.bfloat16, enabled=train.precision == "bf16"
    )
    weight, start = recipe.discriminator.config.weight, steps // 2
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step, began = 0, 0.0
    while step < steps:
        for batch in loader:
            if step == start:
                synchronize(device)
                began = time.perf_counter()
            images = batch["image"].to(device, non_blocking=True)
            with autocast():
                reconstructions, output = model(images)
                terms = losses(reconstructions, images)
                loss = sum(terms.values()) + output.loss.float()
                if step >= start:
                    for p in discriminator.parameters():
                        p.requires_grad_(False)
                    fake = -discriminator(reconstructions).float().mean()
                    for p in discriminator.parameters():
                        p.requires_grad_(True)
                    adaptive = adaptive_weight(sum(terms.values()), fake, last)
                    loss = loss + weight * adaptive * fake
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step >= start:
                with autocast():
                    real = discriminator(images).float()
                    fake_logits = discriminator(reconstructions.detach()).float()
                    d_loss = F.relu(1 - real).mean() + F.relu(1 + fake_logits).mean()
                d_loss.backward()
                d_optimizer.step()
                d_optimizer.zero_grad(set_to_none=True)
            step += 1
            if step == steps:
                break
    synchronize(device)
    seconds = time.perf_counter() - began
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    return {
        "images_per_second": (steps - start) * data.batch_size / seconds,
        "peak_gib": peak,
    }


class CudaSyncs:
    """Every sync ``torch.cuda.set_sync_debug_mode("warn")`` reports, with the innermost
    frame outside torch; ``mark(label)`` files the ones after it under ``label``."""

    def __init__(self) -> None:
        self.sites: list[tuple[str, str, Any]] = []
        self.label: Any = None

    def mark(self, label: Any) -> None:
        self.label = label

    def _seen(self, message, category, filename, lineno, file=None, line=None) -> None:
        if "synchronizing" not in str(message):
            return
        frames = [
            f
            for f in traceback.extract_stack()[:-1]
            if "/torch/" not in f.filename and "warnings" not in f.filename
        ]
        site = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else f"{filename}:{lineno}"
        self.sites.append((str(message).split("\n")[0][:80], site, self.label))

    def __enter__(self) -> CudaSyncs:
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("always")
        warnings.showwarning = self._seen
        torch.cuda.set_sync_debug_mode("warn")
        return self

    def __exit__(self, *exc: Any) -> None:
        torch.cuda.set_sync_debug_mode("default")
        self._warnings.__exit__(*exc)


def syncs(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    from laser_core.recipes.model import load_recipe
    from laser_core.training import train as training

    rows = []
    for name, path in (args.recipes or SYNC_RECIPES).items():
        overrides = [f"train.steps={SYNC_STEPS}", f"train.log_every={LOG_EVERY}"]
        if name == "vqgan":
            overrides = [*_overrides(args.dry_run, SYNC_STEPS), f"train.log_every={LOG_EVERY}"]
        elif args.dry_run:
            overrides += ["data.train_patches=64", "data.val_patches=16"]
        recipe = load_recipe(REPO / path, [*overrides, "train.eval_every=0"])
        if device.type == "cuda":
            counter: Any = CudaSyncs()
        else:
            sys.path.insert(0, str(REPO))
            from tests.sync_counter import TRAINING_LOOP_IGNORE, SyncCounter

            # the CPU counter's plugin exclusion would hide the bottlenecks' own syncs
            counter = SyncCounter(ignore=TRAINING_LOOP_IGNORE[1:])
        real_step = training._Loop._step

        def marked_step(self, state, *rest, _counter=counter, _step=real_step):
            _counter.mark(state.step + 1)
            return _step(self, state, *rest)

        training._Loop._step = marked_step
        run_dir = Path(args.out).with_suffix("") / name
        shutil.rmtree(run_dir, ignore_errors=True)  # this tool's own run of an earlier call
        try:
            with counter:
                training.train(recipe, run_dir)
        finally:
            training._Loop._step = real_step
        found = (
            counter.sites
            if device.type == "cuda"
            else [(s.name, s.site, s.label) for s in counter.sites]
        )
        expected = {LOG_EVERY, SYNC_STEPS}
        for kind, site, step in found:
            if step is not None:
                where = os.path.relpath(site, REPO) if site.startswith(str(REPO)) else site
                rows.append(
                    {
                        "recipe": name,
                        "step": step,
                        "sync": kind,
                        "site": where,
                        "expected": step in expected or step == 1,
                    }
                )
        unexpected = sum(1 for r in rows if r["recipe"] == name and not r["expected"])
        print(f"{name}: {len(found)} syncs, {unexpected} in steps that should wait on nothing")
    return rows


SECTIONS: dict[str, Callable[[argparse.Namespace, torch.device], Any]] = {
    "omp": omp,
    "vq": vq,
    "sweeps": sweeps,
    "vqgan": vqgan,
    "syncs": syncs,
}


def collect(folder: Path) -> Path:
    """Merge the sections' JSON and the step log (steps.tsv: name, budget, seconds, status)
    into ``folder``/gpu_check.json."""
    steps = []
    log = folder / "steps.tsv"
    for line in log.read_text().splitlines() if log.exists() else []:
        name, budget, seconds, status = line.split("\t")
        steps.append(
            {"step": name, "budget_s": int(budget), "seconds": int(seconds), "exit": int(status)}
        )
    result: dict[str, Any] = {"steps": steps}
    for name in ("machine", *SECTIONS):
        path = folder / f"{name}.json"
        if path.exists():
            result[name] = json.loads(path.read_text())
    out = folder / "gpu_check.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    return out


def machine(device: torch.device, dry_run: bool) -> dict[str, Any]:
    found = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_cores": os.cpu_count(),
        "dry_run": dry_run,
        "date": time.strftime("%Y-%m-%d"),
    }
    try:
        import triton

        found["triton"] = triton.__version__
    except ImportError:
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("section", choices=[*SECTIONS, "machine", "collect"])
    parser.add_argument("folder", nargs="?", help="collect: the folder of the sections' JSON")
    parser.add_argument("--out", help="where the section's JSON goes")
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU")
    parser.add_argument("--shapes", type=lambda s: s.split(","), help="comma-separated shapes")
    parser.add_argument(
        "--recipes",
        type=lambda s: {name: SYNC_RECIPES[name] for name in s.split(",")},
        help="syncs: which of " + ", ".join(SYNC_RECIPES),
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.section == "collect":
        print(collect(Path(args.folder)))
        return
    device = torch.device("cpu" if args.dry_run else "cuda")
    if args.dry_run:
        args.repeats = 1
    if args.section == "machine":
        result: Any = machine(device, args.dry_run)
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        result = SECTIONS[args.section](args, device)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
