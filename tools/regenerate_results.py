"""Regenerate docs/results.md from runs: every table and number in it.

    python tools/regenerate_results.py                     # ~30 min on two CPU cores
    python tools/regenerate_results.py --toy --out /tmp/results.md   # checks the pipeline
    python tools/regenerate_results.py --remeasure quickstart.yaml    # one recipe's wall time

Runs each sweep of ``recipes/sweeps/`` with ``laser sweep`` (into ``--work``, default
``runs/results``; rerunning skips finished runs, so an interrupted regeneration resumes), adds
the digits' mlp and cnn classifiers with ``laser task``, writes a ``laser compare`` report per
sweep beside them, and fills ``tools/results_template.md`` with the numbers. ``--toy`` cuts
every run to a few steps (and the classifiers to one epoch) so the whole pipeline runs in a
few minutes; its numbers mean nothing and it writes where ``--out`` says.

Each wall time is written with the mean load average while its run ran, and the page names the
machine and the range of those loads. A run an interrupted regeneration left unfinished is run
again from its start, so every wall time is a whole run; the load samples are kept in
``load-samples.txt`` and the classifiers' results in ``classifiers.json``, for the regeneration
that resumes. The README and recipe headers state a recipe's
time only as the phrase "N s on C CPU cores at load L (docs/results.md)", which this script
rewrites from the page's row for that recipe after every change. ``--remeasure RECIPE...``
reruns just those recipes with `laser run` and rewrites their wall times (the rows that name
the recipe alone), when a whole regeneration would take too long.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from machine import LoadSampler, cores, cpu_name

from laser_core.recipes.model import load_recipe

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
SWEEPS = RECIPES / "sweeps"
README = REPO / "README.md"
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
STATED = re.compile(r"(\d+ s) on \d+ CPU cores at load ([\d.]+) \(docs/results\.md\)")
"""How the README and recipe headers state a time: generated, see :func:`stale_times`."""
WALL_TIME = re.compile(r"(\d+ s) at load ([\d.]+)")
MACHINE = re.compile(r"^Wall times measured on .*$", re.MULTILINE)
CLASSIFIERS = "classifiers.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "results")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results.md")
    parser.add_argument("--toy", action="store_true", help="a few steps per run, to test this")
    parser.add_argument(
        "--remeasure", nargs="+", metavar="RECIPE", help="only these recipes' wall times"
    )
    args = parser.parse_args()
    official = args.out.resolve() == (REPO / "docs" / "results.md").resolve()
    if args.toy and official:
        parser.error("--toy numbers are meaningless: give --out somewhere else")
    if args.remeasure:
        remeasure(args.remeasure, args.work / "remeasured", args.out)
    else:
        args.work.mkdir(parents=True, exist_ok=True)
        with LoadSampler(log=args.work / "load-samples.txt") as sampler:
            sweep_dirs = {name: run_sweep(name, args.work, args.toy, sampler) for name in NAMES}
            classifiers = classify(sweep_dirs["classify-digits"] / "runs" / "run", args.toy)
        for name, sweep_dir in sweep_dirs.items():
            laser("compare", str(sweep_dir), "-o", str(args.work / "compare" / name))
        values = numbers(sweep_dirs, classifiers)
        page = TEMPLATE.read_text().format_map(values)
        if args.out.exists():
            page = kept_sections(page, args.out.read_text())
        args.out.write_text(with_machine(page))
        print(f"wrote {args.out}; reports in {args.work / 'compare'}")
    if official:
        for path, text in stale_times(args.out.read_text()).items():
            path.write_text(text)
            print(f"rewrote the times {path.relative_to(REPO)} states")


def laser(*argv: str) -> None:
    print("$ laser " + " ".join(argv), flush=True)
    subprocess.run([sys.executable, "-m", "laser_core.cli", *argv], check=True)


def run_sweep(name: str, work: Path, toy: bool, sampler: LoadSampler) -> Path:
    sweep_file = SWEEPS / f"{name}.yaml"
    if toy:
        sweep_file = toy_sweep(sweep_file, work / "toy-sweeps")
    sweep_dir = work / name
    discard_unfinished(sweep_dir)
    laser("sweep", str(sweep_file), "--sweep-dir", str(sweep_dir), "--jobs", "1")
    record_loads(sweep_dir, sampler)
    return sweep_dir


def discard_unfinished(sweep_dir: Path) -> None:
    """Delete the runs an interrupted regeneration left unfinished (and the classifiers'
    results, when the digits run is one), so that `laser sweep` starts them over instead of
    resuming them: a resumed run's wall time would be its last part only."""
    if not (sweep_dir / "status.json").exists():
        return
    for run, state in status(sweep_dir).items():
        if state["state"] != "done":
            shutil.rmtree(sweep_dir / "runs" / run, ignore_errors=True)
            (sweep_dir / CLASSIFIERS).unlink(missing_ok=True)


def record_loads(sweep_dir: Path, sampler: LoadSampler) -> None:
    """Each finished run's mean load average, in ``SWEEP_DIR/loads.json``: kept for the runs an
    earlier, interrupted regeneration finished, which this one skips."""
    path = sweep_dir / "loads.json"
    loads = json.loads(path.read_text()) if path.exists() else {}
    for run, state in status(sweep_dir).items():
        if run not in loads and state["state"] == "done":
            loads[run] = sampler.mean(state["started"], state["started"] + state["seconds"])
    path.write_text(json.dumps(loads, indent=2) + "\n")


def machine() -> str:
    """What the wall times were measured on; the load is given with each."""
    return f"{cpu_name()}, {cores()} cores, Python {sys.version.split()[0]}"


KEPT = (("<!-- prior comparison: start -->", "<!-- prior comparison: end -->"),)
"""Sections another script writes into the page (tools/compare_priors.py), kept as they are."""


def kept_sections(page: str, old: str) -> str:
    """``page`` with each KEPT section as ``old`` holds it."""
    for start, end in KEPT:
        if start in old and end in old:
            before, _, rest = page.partition(start)
            _, _, after = rest.partition(end)
            section = old[old.index(start) : old.index(end)]
            page = before + section + end + after
    return page


def with_machine(page: str) -> str:
    """``page`` with its machine line naming this machine and the loads of its wall times, and
    how to read them when the machine was shared."""
    loads = sorted(float(m.group(2)) for m in WALL_TIME.finditer(page))
    line = f"Wall times measured on {machine()}, at loads from {loads[0]:.1f} to {loads[-1]:.1f}."
    if loads[-1] > cores():
        line += (
            f" The machine was shared with other jobs: at a load L above its {cores()} cores a"
            f" run gets about {cores()}/L of them, so on an idle machine of this kind expect"
            f" roughly the wall time x {cores()}/L (an estimate; these runs were not timed idle)."
        )
    return MACHINE.sub(line, page)


def wall_time(seconds: float, load: float) -> str:
    return f"{seconds:.0f} s at load {load:.1f}"


def remeasure(recipes: list[str], work: Path, out: Path) -> None:
    """Rerun each recipe as a sweep would (one `laser run`) and rewrite the wall time of the
    rows of ``out`` that name it alone, and the machine line."""
    text = out.read_text()
    for name in recipes:
        run_dir = work / f"{name.removesuffix('.yaml')}-{time.strftime('%Y%m%d-%H%M%S')}"
        with LoadSampler() as sampler:
            start = time.time()
            laser("run", str(RECIPES / name), "--run-dir", str(run_dir))
            end = time.time()
        rows = [line for line in text.splitlines() if recipe_of_row(line) == name]
        if not rows:
            raise SystemExit(f"{out} has no row that names {name} alone")
        for row in rows:
            cells = row.split("|")
            cells[-2] = f" {wall_time(end - start, sampler.mean(start, end))} "
            text = text.replace(row, "|".join(cells))
    out.write_text(with_machine(text))


def recipe_of_row(line: str) -> str | None:
    """The recipe a table row of results.md names alone (a first cell "`quickstart.yaml`",
    "`fsq.yaml`: ..." or "`quickstart.yaml` (...)"; not "`gumbel.yaml bottleneck.x=y`")."""
    if not line.startswith("|"):
        return None
    first = line.split("|")[1].strip()
    match = re.fullmatch(r"`([\w./-]+\.yaml)`(:.*| \(.*)?", first)
    return match.group(1) if match else None


def stale_times(results: str) -> dict[Path, str]:
    """The README and recipe files whose stated times (the :data:`STATED` phrase) differ from
    the wall times in ``results``, each with its text brought up to date. A phrase is about a
    header's own recipe, or about the last ``recipes/NAME.yaml`` before it on a README line."""
    times = {}
    for line in results.splitlines():
        cell = line.split("|")[-2].strip() if line.startswith("|") else ""
        if recipe_of_row(line) and WALL_TIME.fullmatch(cell):
            times.setdefault(recipe_of_row(line), WALL_TIME.fullmatch(cell))
    stale = {}
    for path in [README, *sorted(RECIPES.rglob("*.yaml"))]:
        own = None if path == README else str(path.relative_to(RECIPES))
        text = path.read_text()
        updated = "\n".join(stated(line, own, times, path) for line in text.split("\n"))
        if updated != text:
            stale[path] = updated
    return stale


def stated(line: str, recipe: str | None, times: dict[str, re.Match], path: Path) -> str:
    found = STATED.search(line)
    if found is None:
        return line
    if recipe is None:
        named = re.findall(r"recipes/([\w./-]+\.yaml)", line[: found.start()])
        recipe = named[-1] if named else None
    if recipe not in times:
        raise SystemExit(f"{path} states a time of {recipe}, which docs/results.md does not hold")
    seconds, load = times[recipe].groups()
    return STATED.sub(f"{seconds} on {cores()} CPU cores at load {load} (docs/results.md)", line)


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
    """Task results of each classifier; linear last, so the run ends as `laser run` left it.
    Kept in ``classifiers.json`` beside the run, which a rerun reads instead of training them
    again."""
    cache = run_dir.parent.parent / CLASSIFIERS
    if cache.exists():
        return json.loads(cache.read_text())
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
    cache.write_text(json.dumps(results, indent=2) + "\n")
    return results


def run_numbers(sweep_dir: Path, run: str) -> dict[str, float]:
    """Validation before (step 0) and after training, the sweep's wall time of the run and the
    mean load average while it ran."""
    run_dir = sweep_dir / "runs" / run
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    before = next(r for r in records if r["split"] == "val" and r["step"] == 0)
    after = json.loads((run_dir / "metrics.json").read_text())
    load = json.loads((sweep_dir / "loads.json").read_text())[run]
    return {
        "before": before["psnr"],
        "seconds": status(sweep_dir)[run]["seconds"],
        "load": load,
        **after,
    }


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
    values: dict[str, str] = {"machine": machine()}
    for key, r in runs.items():
        values[key] = f"{r['before']:.1f} -> {r['psnr']:.1f} dB"
        values[f"{key}_ssim"] = f"{r['ssim']:.3f}"
        values[f"{key}_time"] = wall_time(r["seconds"], r["load"])
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
