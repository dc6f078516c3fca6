"""What `laser run` costs over a hand-written training loop of the same model and data.

    python tools/bench_run_overhead.py [--steps 150] [--repeats 3] [--write-docs]

Times `laser run recipes/quickstart.yaml train.steps=STEPS` against this script's own
`--hand-written` loop, each a fresh process, alternating the two REPEATS times so that changes
in the machine's load hit both alike; the ratio to the loop is the framework's overhead, in
wall time and in CPU time (the process and its threads; on a shared machine the steadier of
the two, since other processes' load stretches the wall time far more than the CPU time; the
fastest run is the one they disturbed least):
start-up (imports, recipe validation; both load the plugins), Accelerate, the run directory
(recipe, manifest, metrics log, checkpoint, reconstruction grids). The hand-written loop builds
the same components through the public API (`laser_core.build_component`), trains them
with the same AdamW, warmup-cosine schedule, gradient clipping and batches, validates the same
8 batches on the same metrics at step 0, every 100 steps and at the end, and saves the weights.
``--write-docs`` writes the table into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

import yaml
from doc_section import publish
from machine import LoadSampler, describe, load

from laser_core.cli.main import THREAD_ENV

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "quickstart.yaml"
DOC = REPO / "docs" / "benchmarks.md"
START, END = "<!-- run overhead table: start -->", "<!-- run overhead table: end -->"
# laser:base/cpu_small.yaml, which the quickstart extends
LR, BETAS, WARMUP, MIN_LR_RATIO, GRAD_CLIP = 2e-3, (0.9, 0.99), 20, 0.1, 1.0
EVAL_EVERY, EVAL_BATCHES, SEED = 100, 8, 0
METRICS = ("mse", "psnr", "ssim", "codebook-usage")


def hand_written(steps: int, out: Path) -> None:
    """The quickstart's training as a person would write it around LASER's components."""
    import torch
    from safetensors.torch import save_file
    from torch.nn import functional as F
    from torch.utils.data import DataLoader

    from laser_core import Autoencoder, BuildContext, build_component

    torch.manual_seed(SEED)
    blocks = yaml.safe_load(RECIPE.read_text())
    splits = build_component("datasets", blocks["data"])
    context = BuildContext(image_channels=splits.image_channels, image_size=splits.image_size)
    encoder = build_component("encoders", blocks["encoder"], context)
    context = replace(context, latent_dim=encoder.latent_dim, downsampling=encoder.downsampling)
    bottleneck = build_component("bottlenecks", blocks["bottleneck"], context)
    context = replace(context, latent_dim=bottleneck.output_dim, code_spec=bottleneck.code_spec())
    model = Autoencoder(
        encoder, bottleneck, build_component("decoders", blocks["decoder"], context)
    )
    metrics = {name: build_component("metrics", {"name": name}, context) for name in METRICS}
    batch_size = blocks["data"]["batch_size"]
    train = DataLoader(splits.train, batch_size=batch_size, shuffle=True, drop_last=True)
    val = DataLoader(splits.val, batch_size=batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, weight_decay=0.0)

    def factor(step: int) -> float:
        if step < WARMUP:
            return (step + 1) / WARMUP
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, (step - WARMUP) / (steps - WARMUP))))
        return MIN_LR_RATIO + (1 - MIN_LR_RATIO) * cosine

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    @torch.no_grad()
    def validate(step: int) -> None:
        model.eval()
        values: dict[str, list[torch.Tensor]] = {name: [] for name in metrics}
        for batch in islice(val, EVAL_BATCHES):
            reconstructions, output = model(batch["image"])
            for name, metric in metrics.items():
                values[name].append(metric.per_example(batch["image"], reconstructions, output))
        model.train()
        summary = {
            k: v
            for name, m in metrics.items()
            for k, v in m.summarize(torch.cat(values[name])).items()
        }
        print(f"step {step}: {summary}")

    validate(0)
    step = 0
    while step < steps:
        for batch in train:
            reconstructions, output = model(batch["image"])
            loss = F.mse_loss(reconstructions, batch["image"]) + output.loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            bottleneck.after_optimizer_step()
            step += 1
            if step % 25 == 0:
                print(f"step {step}: loss {loss.item():.4g}")
            if step % EVAL_EVERY == 0 or step == steps:
                validate(step)
            if step == steps:
                break
    out.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), out / "model.safetensors")


@dataclass(frozen=True)
class Timing:
    """One process: its wall time, the CPU time it and its threads used (which the load of
    other processes inflates far less than the wall time), and the mean load while it ran."""

    wall: float
    cpu: float
    load: float


def timed(argv: list[str], sampler: LoadSampler) -> Timing:
    """Run ``argv`` in the environment `laser` gives itself (its threads' setting)."""
    env = {**THREAD_ENV, **os.environ}
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
    subprocess.run(argv, cwd=REPO, env=env, check=True, capture_output=True)
    wall = time.time() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Timing(wall, cpu, sampler.mean(start, time.time()))


def summary(runs: list[Timing]) -> dict[str, float]:
    """The columns of one side's row: median wall and CPU time, and the fastest CPU time."""
    return {
        "wall": statistics.median(t.wall for t in runs),
        "cpu": statistics.median(t.cpu for t in runs),
        "fastest cpu": min(t.cpu for t in runs),
    }


def laser() -> list[str]:
    """The ``laser`` script a user runs, installed beside this interpreter."""
    script = Path(sys.executable).with_name("laser")
    return [str(script)] if script.exists() else [sys.executable, "-m", "laser_core.cli"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true", help=f"write the table into {DOC}")
    parser.add_argument("--hand-written", type=Path, metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hand_written:
        hand_written(args.steps, args.hand_written)
        return
    before = describe()
    times: dict[str, list[Timing]] = {"hand-written loop": [], "laser run": []}
    with tempfile.TemporaryDirectory() as folder, LoadSampler() as sampler:
        for repeat in range(args.repeats):
            loop = [sys.executable, __file__, "--steps", str(args.steps)]
            times["hand-written loop"].append(
                timed([*loop, "--hand-written", f"{folder}/h{repeat}"], sampler)
            )
            run = [
                "run",
                str(RECIPE),
                f"train.steps={args.steps}",
                "--run-dir",
                f"{folder}/r{repeat}",
            ]
            times["laser run"].append(timed([*laser(), *run], sampler))
    baseline = summary(times["hand-written loop"])
    rows = [
        f"| {args.steps} steps of the quickstart | wall, median | CPU, median | CPU, fastest "
        "| each run: wall / CPU (load while it ran) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, runs in times.items():
        cells = " | ".join(
            f"{value:.1f} s ({value / baseline[key]:.2f}x)" for key, value in summary(runs).items()
        )
        each = ", ".join(f"{t.wall:.1f} / {t.cpu:.1f} s ({t.load:.1f})" for t in runs)
        rows.append(f"| {name} | {cells} | {each} |")
    text = "\n".join(
        [
            *rows,
            "",
            f"{args.repeats} runs of each, alternating, on {before}; at the end: {load()}.",
        ]
    )
    publish(DOC, START, END, text, args.write_docs)


if __name__ == "__main__":
    main()
