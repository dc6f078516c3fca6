"""Regenerate docs/results.md from runs: every table and number in it.

    python tools/regenerate_results.py                     # ~30 min on two CPU cores
    python tools/regenerate_results.py --toy --out /tmp/results.md   # checks the pipeline

Runs each sweep of ``recipes/sweeps/`` with ``laser sweep`` (into ``--work``, default
``runs/results``; rerunning skips finished runs, so an interrupted regeneration resumes), adds
the digits' mlp and cnn classifiers with ``laser task``, writes a ``laser compare`` report per
sweep beside them, and fills ``tools/results_template.md`` with the numbers. ``--toy`` cuts
every run to a few steps (and the classifiers to one epoch) so the whole pipeline runs in a
few minutes; its numbers mean nothing and it writes where ``--out`` says.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from laser_core.recipes.model import load_recipe

REPO = Path(__file__).resolve().parents[1]
SWEEPS = REPO / "recipes" / "sweeps"
TEMPLATE = REPO / "tools" / "results_template.md"
NAMES = (
    "classify-digits",
    "bottlenecks",
    "gumbel-sampling",
    "omp-update",
    "gaussian-beta",
    "pixels-vq",
    "pixels-omp",
    "fsq-levels",
    "lfq",
)
TOY = ["train.steps=3", "train.eval_every=0", "train.eval_batches=1", "train.warmup_steps=0"]
TOY_PATCHES = ["data.train_patches=64", "data.val_patches=16"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "results")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results.md")
    parser.add_argument("--toy", action="store_true", help="a few steps per run, to test this")
    args = parser.parse_args()
    if args.toy and args.out.resolve() == (REPO / "docs" / "results.md").resolve():
        parser.error("--toy numbers are meaningless: give --out somewhere else")
    sweep_dirs = {name: run_sweep(name, args.work, args.toy) for name in NAMES}
    classifiers = classify(sweep_dirs["classify-digits"] / "runs" / "run", args.toy)
    for name, sweep_dir in sweep_dirs.items():
        laser("compare", str(sweep_dir), "-o", str(args.work / "compare" / name))
    values = numbers(sweep_dirs, classifiers)
    args.out.write_text(TEMPLATE.read_text().format_map(values))
    print(f"wrote {args.out}; reports in {args.work / 'compare'}")


def laser(*argv: str) -> None:
    print("$ laser " + " ".join(argv), flush=True)
    subprocess.run([sys.executable, "-m", "laser_core.cli", *argv], check=True)


def run_sweep(name: str, work: Path, toy: bool) -> Path:
    sweep_file = SWEEPS / f"{name}.yaml"
    if toy:
        sweep_file = toy_sweep(sweep_file, work / "toy-sweeps")
    sweep_dir = work / name
    laser("sweep", str(sweep_file), "--sweep-dir", str(sweep_dir), "--jobs", "1")
    return sweep_dir


def toy_sweep(path: Path, folder: Path) -> Path:
    """The sweep with absolute recipe paths, a few steps per run (axes on train.steps cut
    too) and one epoch per classifier."""
    data = yaml.safe_load(path.read_text())
    recipes = data["recipe"] if isinstance(data["recipe"], list) else [data["recipe"]]
    absolute = [str((path.parent / r).resolve()) for r in recipes]
    data["recipe"] = absolute if isinstance(data["recipe"], list) else absolute[0]
    for group in [data.get("axes", {}), *data.get("zip", [])]:
        if "train.steps" in group:
            group["train.steps"] = [max(2, int(v) // 100) for v in group["train.steps"]]
    loaded = [load_recipe(r) for r in absolute]
    toy = [*TOY, *(["task.epochs=1"] if loaded[0].task else [])]
    if all(r.data.name == "photo-patches" for r in loaded):
        toy += TOY_PATCHES
    data["overrides"] = [*data.get("overrides", []), *toy]
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / path.name
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def classify(run_dir: Path, toy: bool) -> dict[str, dict[str, float]]:
    """Task results of each classifier; linear last, so the run ends as `laser run` left it."""
    results = {}
    for classifier in ("mlp", "cnn", "linear"):
        laser(
            "task",
            str(run_dir),
            f"task.classifier={classifier}",
            *(["task.epochs=1"] if toy else []),
        )
        metrics = json.loads((run_dir / "metrics.json").read_text())
        results[classifier] = {
            k.removeprefix("task/"): v for k, v in metrics.items() if k.startswith("task/")
        }
    return results


def run_numbers(sweep_dir: Path, run: str) -> dict[str, float]:
    """Validation before (step 0) and after training, and the sweep's wall time of the run."""
    run_dir = sweep_dir / "runs" / run
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    before = next(r for r in records if r["split"] == "val" and r["step"] == 0)
    after = json.loads((run_dir / "metrics.json").read_text())
    return {"before": before["psnr"], "seconds": status(sweep_dir)[run]["seconds"], **after}


def status(sweep_dir: Path) -> dict[str, dict]:
    """The sweep's runs in its order, each with its state and wall time."""
    return json.loads((sweep_dir / "status.json").read_text())["runs"]


def numbers(sweeps: dict[str, Path], classifiers: dict) -> dict[str, str]:
    # (sweep, position of the run in the sweep's order), see recipes/sweeps/
    rows = {
        "quickstart": ("bottlenecks", 0),
        "rq": ("bottlenecks", 1),
        "ksvd": ("bottlenecks", 2),
        "gumbel": ("gumbel-sampling", 0),
        "gumbel_softmax": ("gumbel-sampling", 1),
        "omp": ("omp-update", 0),
        "omp_online": ("omp-update", 1),
        "gaussian": ("gaussian-beta", 0),
        "gaussian_small": ("gaussian-beta", 1),
        "pixels_vq": ("pixels-vq", 0),
        "pixels_vq_long": ("pixels-vq", 1),
        "pixels_ema": ("pixels-vq", 2),
        "pixels_rq": ("pixels-vq", 3),
        **{f"pixels_omp{s}": ("pixels-omp", i) for i, s in enumerate((1, 2, 4, 8))},
        "fsq": ("fsq-levels", 0),
        "fsq_4444": ("fsq-levels", 1),
        "lfq": ("lfq", 0),
    }
    names = {name: list(status(path)) for name, path in sweeps.items()}
    runs = {key: run_numbers(sweeps[sweep], names[sweep][i]) for key, (sweep, i) in rows.items()}
    values: dict[str, str] = {}
    for key, r in runs.items():
        values[key] = f"{r['before']:.1f} -> {r['psnr']:.1f} dB"
        values[f"{key}_ssim"] = f"{r['ssim']:.3f}"
        values[f"{key}_time"] = f"{r['seconds']:.0f} s"
        values[f"{key}_after"] = f"{r['psnr']:.1f}"
        values[f"{key}_perplexity"] = f"{r.get('codebook_perplexity', float('nan')):.0f}"
    values["pixels_ema"] = f"{runs['pixels_ema']['psnr']:.1f}"
    psnr = {key: round(r["psnr"], 1) for key, r in runs.items()}
    values["gumbel_gain"] = f"{psnr['gumbel'] - psnr['gumbel_softmax']:+.1f}"
    values["omp4_over_vq"] = f"{psnr['pixels_omp4'] - psnr['pixels_vq']:.1f}"
    values["omp1_over_vq"] = f"{psnr['pixels_omp1'] - psnr['pixels_vq']:.1f}"
    values["omp4_over_rq"] = f"{psnr['pixels_omp4'] - psnr['pixels_rq']:.1f}"
    values["vq_long_gain"] = f"{psnr['pixels_vq_long'] - psnr['pixels_vq']:+.1f}"
    values["fsq_vs_vq"] = f"{psnr['fsq'] - psnr['quickstart']:+.1f}"
    values["fsq_4444_vs_vq"] = f"{psnr['fsq_4444'] - psnr['quickstart']:+.1f}"
    values["lfq_vs_vq"] = f"{psnr['lfq'] - psnr['quickstart']:+.1f}"
    for key in ("fsq", "fsq_4444", "lfq"):
        values[f"{key}_usage"] = f"{100 * runs[key]['codebook_usage']:.0f}%"

    digits = run_numbers(sweeps["classify-digits"], "run")  # a sweep of one run
    values["digits_psnr"] = f"{digits['psnr']:.1f}"
    values["digits_ssim"] = f"{digits['ssim']:.3f}"
    values["digits_usage"] = f"{100 * digits['codebook_usage']:.0f}%"
    values["digits_perplexity"] = f"{digits['codebook_perplexity']:.1f}"
    for classifier, results in classifiers.items():
        for name in ("pixels", "continuous", "quantized", "codes", "chance"):
            values[f"{classifier}_{name}"] = f"{100 * results[f'{name}/accuracy']:.1f}%"
    for name in ("pixels", "continuous", "quantized", "codes"):
        values[f"size_{name}"] = f"{classifiers['linear'][f'{name}/input_size']:.0f}"
    return values


if __name__ == "__main__":
    main()
