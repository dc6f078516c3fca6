"""Compare priors over VQ, RQ, FSQ and sparse (OMP, K-SVD) codes at matched reconstruction PSNR,
and write the table into docs/results.md between its markers.

    python tools/compare_priors.py --prior-steps 600   # what --work lacks; 1.5 h at load 20
    python tools/compare_priors.py --toy --out /tmp/results.md   # a few steps per run, 4 min
    python tools/compare_priors.py --datasets photo --families OMP   # one family, in parallel
    python tools/compare_priors.py --collect           # the page from what --work holds

For each dataset (digits, labelled; photo patches) it trains one tokenizer per family with
`laser run`: VQ at a recipe's sizes sets the target PSNR, and every other family tries its
candidate sizes in order (RQ levels, FSQ levels, OMP/K-SVD sparsity) until one lands within
0.5 dB of it, keeping the closest. PSNR here is that of the decoded *coded* validation images
(codes as `laser compress` codes them, coefficients quantized to 8 bits), since that is what
the prior's bits pay for. On each chosen tokenizer it trains the counts prior and one
transformer prior (`laser prior`, the same recipe for every family) and reads their held-out
bits; each transformer's wall time is stated with the mean load average while it trained.

Rerunning skips every run and prior that --work holds, so an interrupted comparison resumes.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from doc_section import write_section
from machine import LoadSampler, cores, cpu_name
from torch.utils.data import DataLoader

from laser_core.coding.codec import Codec
from laser_core.coding.symbols import quantized
from laser_core.rundir.checkpoint import complete_checkpoints
from laser_core.rundir.layout import RunDir
from laser_plugins.metrics import PSNR

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results.md"
START = "<!-- prior comparison: start -->"
END = "<!-- prior comparison: end -->"
HEADING = "## Priors over VQ, RQ, FSQ and sparse codes at matched PSNR"
DONE = "model.safetensors"
"""What a finished prior's folder holds."""
SAMPLE_FID = "classifier/samples/fid"
LABELLED = ("digits",)
"""Datasets whose samples `laser sample --evaluate` can judge (a classifier needs labels)."""
TOLERANCE = 0.5
"""dB: how close a family's coded PSNR should come to the target (VQ's)."""
TRANSFORMER = REPO / "recipes" / "priors" / "transformer-cpu.yaml"
TOY_RUN = ["train.steps=3", "train.eval_every=0", "train.eval_batches=1", "train.warmup_steps=0"]
TOY_PATCHES = ["data.train_patches=64", "data.val_patches=16"]


@dataclass(frozen=True)
class Family:
    """A bottleneck family on one dataset: its candidate sizes, each a run name and the
    overrides of the dataset's recipe, tried in order."""

    name: str
    recipe: str
    candidates: tuple[tuple[str, tuple[str, ...]], ...]


DIGITS = "recipes/classify-digits.yaml"  # its task block is dropped: no classifier needed


def _digits(bottleneck: str) -> tuple[str, ...]:
    return ("~task", f"bottleneck={bottleneck}")


PHOTO_OMP = ("bottleneck.update=online",)  # the gradient update is 20x slower, same PSNR
# On photo patches sparsity 2 lands 1.3 dB above VQ (K-SVD tried it) and 1 lands 0.8 dB above,
# so OMP tries 1 alone.
DATASETS: dict[str, tuple[Family, ...]] = {
    "digits": (
        Family("VQ", DIGITS, (("vq", ("~task",)),)),
        Family(
            "RQ",
            DIGITS,
            tuple(
                (
                    f"rq-l2-k{k}",
                    _digits(f"{{name: rq, levels: 2, codebook_size: {k}, kmeans_init: true}}"),
                )
                for k in (64, 16, 8)
            ),
        ),
        Family(
            "FSQ",
            DIGITS,
            (("fsq", _digits("{name: fsq, levels: [4, 4, 4], codes: index}")),),
        ),
        *(
            Family(
                label,
                DIGITS,
                tuple(
                    (f"{name}-s{s}", _digits(f"{{name: {name}, atoms: 64, sparsity: {s}{extra}}}"))
                    for s in (2, 1)
                ),
            )
            for label, name, extra in (
                ("OMP", "omp", ", update: online"),
                ("K-SVD", "ksvd", ""),
            )
        ),
    ),
    "photo": (
        Family("VQ", "recipes/quickstart.yaml", (("vq", ()),)),
        Family(
            "RQ",
            "recipes/rq.yaml",
            (("rq-l2", ("bottleneck.levels=2",)),),  # 1.0 dB above VQ; more levels, further
        ),
        Family(
            "FSQ",
            "recipes/fsq.yaml",
            (("fsq", ()), ("fsq-8555", ("bottleneck.levels=[8, 5, 5, 5]",))),
        ),
        Family(
            "OMP",
            "recipes/omp.yaml",
            (("omp-s1", (*PHOTO_OMP, "bottleneck.sparsity=1")),),
        ),
        Family(
            "K-SVD",
            "recipes/ksvd.yaml",
            tuple((f"ksvd-s{s}", (f"bottleneck.sparsity={s}",)) for s in (2, 1)),
        ),
    ),
}


def laser(*args: str) -> str:
    """Run a laser command, echoing it; returns it as the docs show it."""
    command = ["laser", *args]
    print("$", shlex.join(command), flush=True)
    subprocess.run([sys.executable, "-m", "laser_core.cli", *args], check=True, cwd=REPO)
    return shlex.join(command)


@torch.no_grad()
def coded_psnr(run_dir: Path) -> float:
    """Mean PSNR of the run's validation images decoded from their codes as `laser compress`
    codes them (values on the quantizer's levels), cached in RUN_DIR/coded_psnr.json."""
    cache = run_dir / "coded_psnr.json"
    if cache.is_file():
        return json.loads(cache.read_text())["psnr"]
    codec = Codec.open(run_dir)
    model, quantizer = codec.model, codec.priors.quantizer
    psnr = []
    for batch in DataLoader(codec.run.data.val, batch_size=64):
        codes = model.bottleneck.encode(model.encoder(batch["image"]))
        if quantizer is not None:
            codes = quantized(codes, quantizer)
        decoded = model.decoder(model.bottleneck.decode(codes)).clamp(-1, 1)
        psnr.append(PSNR().per_example(batch["image"], decoded, None))
    mean = float(torch.cat(psnr).mean())
    cache.write_text(json.dumps({"psnr": mean, "images": len(torch.cat(psnr))}) + "\n")
    return mean


def train_tokenizer(family: Family, candidate: tuple[str, tuple[str, ...]], work: Path, toy: bool):
    name, overrides = candidate
    run_dir = work / name
    if not (run_dir / "model.safetensors").is_file():
        toy_overrides = [*TOY_RUN, *(TOY_PATCHES if "photo" in work.name else [])] if toy else []
        laser("run", family.recipe, *overrides, *toy_overrides, "--run-dir", str(run_dir))
    return run_dir


def choose(
    family: Family, work: Path, target: float | None, toy: bool, train: bool
) -> list[tuple[str, float]]:
    """The family's candidates trained so far with their coded PSNR, the one closest to
    ``target`` first: candidates are trained in order until one lands within TOLERANCE (the
    first one when there is no target yet; only the first with ``toy``). Without ``train``,
    the candidates --work holds, in order, up to the first it lacks."""
    tried = []
    for candidate in family.candidates[:1] if toy else family.candidates:
        if not train and not (work / candidate[0] / "model.safetensors").is_file():
            break
        run_dir = train_tokenizer(family, candidate, work, toy)
        tried.append((candidate[0], coded_psnr(run_dir)))
        if target is None or abs(tried[-1][1] - target) <= TOLERANCE:
            break
    return sorted(tried, key=lambda run: abs(run[1] - (target or run[1])))


def train_priors(run_dir: Path, transformer: Path, timings: Path, sampler: LoadSampler) -> None:
    """The counts and transformer priors of a run: skipped when trained, resumed from a
    checkpoint when interrupted. The transformer's wall time and mean load go to ``timings``
    (kept from earlier, interrupted comparisons)."""
    counts = run_dir / "priors" / "counts"
    if not (counts / "model.safetensors").is_file():
        shutil.rmtree(counts, ignore_errors=True)  # a fit interrupted: fit again
        laser("prior", str(run_dir), "recipes/priors/counts.yaml")
    learned = run_dir / "priors" / transformer.stem
    if (learned / "model.safetensors").is_file():
        return
    resume = bool(complete_checkpoints(learned))
    if not resume:
        shutil.rmtree(learned, ignore_errors=True)
    start = time.time()
    laser("prior", str(run_dir), str(transformer), *(["--resume"] if resume else []))
    end = time.time()
    with (timings.parent / "prior_times.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # priors of one dataset may train in parallel
        record_time(timings, str(run_dir), start, end, resume, sampler)


def record_time(
    timings: Path, key: str, start: float, end: float, resume: bool, sampler: LoadSampler
) -> None:
    times = json.loads(timings.read_text()) if timings.is_file() else {}
    earlier = times.get(key, {"seconds": 0.0, "load": 0.0}) if resume else {"seconds": 0.0}
    seconds = earlier["seconds"] + end - start
    load = (
        earlier.get("load", 0.0) * earlier["seconds"] + sampler.mean(start, end) * (end - start)
    ) / seconds
    times[key] = {"seconds": seconds, "load": load, "resumed": resume}
    timings.write_text(json.dumps(times, indent=2) + "\n")


def prior_recipe(work: Path, steps: int | None) -> Path:
    """transformer-cpu.yaml, with ``steps`` when given, as ``WORK/transformer.yaml``."""
    text = TRANSFORMER.read_text()
    if steps:
        text = text.replace("steps: 1500", f"steps: {steps}")
    path = work / "transformer.yaml"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


@dataclass
class Row:
    """One family on one dataset: the sizes tried and, once its priors are trained, what they
    measured (None before)."""

    family: Family
    tried: list[tuple[str, float]]
    """Every size trained, with its coded PSNR; the chosen one first (none yet: empty)."""
    counts: dict[str, float] | None = None
    curve: dict[int, dict[str, float]] | None = None
    """The transformer's held-out bits by training step."""
    step: int | None = None
    """The step compared: the last one every measured prior of the dataset has reached."""
    learned: dict[str, float] | None = None
    """The transformer's held-out bits at ``step``."""
    seconds: float | None = None
    load: float | None = None
    quality: dict[str, float] | None = None
    """The finished transformer's metrics.json: its samples' FID/KID and accuracy, if any."""

    def sample_cells(self) -> list[str]:
        """FID, KID and conditional accuracy of samples, the reconstructions' in parentheses."""
        q = self.quality or {}
        if SAMPLE_FID not in q:
            return ["", "", ""]
        return [
            f"{q[SAMPLE_FID]:.2f} ({q['classifier/reconstructions/fid']:.2f})",
            f"{q['classifier/samples/kid']:.2f} ({q['classifier/reconstructions/kid']:.2f})",
            f"{100 * q['classifier/samples/accuracy']:.0f}% "
            f"({100 * q['classifier/reconstructions/accuracy']:.0f}%)",
        ]

    @property
    def run(self) -> str:
        return self.tried[0][0]

    @property
    def psnr(self) -> float:
        return self.tried[0][1]

    @property
    def tokens(self) -> int:
        return round(self.learned["bits_per_image"] / self.learned["bits_per_token"])


def compare(
    dataset: str, work: Path, transformer: Path, toy: bool, sampler, families: list[str] | None
) -> list[Row]:
    """A row per family of the dataset. Trains what --work lacks for ``families`` (VQ's
    tokenizer always: it sets the target); with ``families`` None, trains nothing."""
    work.mkdir(parents=True, exist_ok=True)
    timings = work / "prior_times.json"
    rows = []
    for family in DATASETS[dataset]:
        target = rows[0].psnr if rows and rows[0].tried else None
        train = families is not None and (family.name in families or not rows)
        row = Row(family, choose(family, work, target, toy, train))
        rows.append(row)
        if not row.tried or (rows[0] is not row and target is None):
            continue
        run_dir = work / row.run
        if families is not None and family.name in families:
            train_priors(run_dir, transformer, timings, sampler)
            if dataset in LABELLED:
                evaluate_samples(run_dir, transformer.stem)
        counts = run_dir / "priors" / "counts"
        curve = held_out_curve(run_dir / "priors" / transformer.stem)
        if not (counts / "model.safetensors").is_file() or not curve:
            continue
        row.counts, row.curve = RunDir(counts).read_final_metrics(), curve
        times = json.loads(timings.read_text()) if timings.is_file() else {}
        learned = run_dir / "priors" / transformer.stem
        if str(run_dir) in times and (learned / DONE).is_file():
            row.seconds, row.load = times[str(run_dir)]["seconds"], times[str(run_dir)]["load"]
            row.quality = RunDir(learned).read_final_metrics()
    measured = [r for r in rows if r.curve]
    if measured:  # compared at the last step every measured prior has reached
        step = min(max(r.curve) for r in measured)
        for r in measured:
            r.step, r.learned = step, r.curve[step]
    return rows


def evaluate_samples(run_dir: Path, prior: str) -> None:
    """FID/KID and conditional accuracy of the prior's samples (`laser sample --evaluate`),
    added to its metrics.json; skipped when they are there."""
    if SAMPLE_FID not in RunDir(run_dir / "priors" / prior).read_final_metrics():
        laser("sample", str(run_dir), "--prior", prior, "--evaluate")


def held_out_curve(prior_dir: Path) -> dict[int, dict[str, float]]:
    """A transformer prior's held-out bits by step, from its metrics.jsonl (finished or not);
    {} before its first evaluation."""
    path = prior_dir / "metrics.jsonl"
    if not path.is_file():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["step"]: r for r in records if r["split"] == "val"}


def table(rows: list[Row]) -> str:
    target = rows[0].psnr if rows[0].tried else None
    lines = [
        "| family | sizes tried (coded PSNR, dB) | vs VQ | tokens per image "
        "| counts: bits per image | counts: bits per pixel "
        "| transformer: bits per image | transformer: bits per pixel "
        "| transformer vs counts | sample FID | sample KID | conditional accuracy "
        "| transformer training |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |",
    ]
    for r in rows:
        tried = ", ".join(
            f"**`{name}`** ({psnr:.2f})" if name == r.run else f"`{name}` ({psnr:.2f})"
            for name, psnr in r.tried
        )
        offset = f"{r.psnr - target:+.2f}" if r.tried and target is not None else ""
        if r.learned is None:
            cells = ["not finished", *[""] * 9]
        else:
            saving = 1 - r.learned["bits_per_image"] / r.counts["bits_per_image"]
            cells = [
                str(r.tokens),
                f"{r.counts['bits_per_image']:.1f}",
                f"{r.counts['bits_per_pixel']:.3f}",
                f"{r.learned['bits_per_image']:.1f}",
                f"{r.learned['bits_per_pixel']:.3f}",
                f"{-100 * saving:+.0f}%",
                *r.sample_cells(),
                f"{r.seconds:.0f} s at load {r.load:.1f}"
                if r.seconds is not None
                else f"unfinished (step {max(r.curve)})",
            ]
        row = [r.family.name, tried or "none trained yet", offset, *cells]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def commands(rows: list[Row], work: Path, steps: int | None) -> str:
    recipe = "recipes/priors/transformer-cpu.yaml" + (f" (steps: {steps})" if steps else "")
    lines = []
    for r in rows:
        for name, _ in r.tried:
            overrides = dict(r.family.candidates)[name]
            command = ["laser", "run", r.family.recipe, *overrides, "--run-dir", shown(work / name)]
            lines.append(shlex.join(command))
    lines.append("# on the chosen RUN_DIR of each family (the first of the table's sizes):")
    lines.append("laser prior RUN_DIR recipes/priors/counts.yaml")
    lines.append(f"laser prior RUN_DIR {recipe}")
    return "\n".join(lines)


def shown(path: Path) -> str:
    """A path as the docs show it: relative to the repository when inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def ratios(rows: list[Row], key: str) -> dict[tuple[str, str], float]:
    """Bits per pixel of each sparse family over each one-of-K family's, under one prior; the
    families measured."""
    done = [r for r in rows if r.learned is not None]
    sparse = [r for r in done if r.family.name in ("OMP", "K-SVD")]
    dense = [r for r in done if r.family.name not in ("OMP", "K-SVD")]
    return {
        (s.family.name, d.family.name): getattr(s, key)["bits_per_pixel"]
        / getattr(d, key)["bits_per_pixel"]
        for s in sparse
        for d in dense
    }


def answer(dataset: str, rows: list[Row]) -> str:
    learned, counts = ratios(rows, "learned"), ratios(rows, "counts")
    if not learned:
        return f"- **{dataset}**: not measured yet (a sparse or a one-of-K family is unfinished)."
    done = [r for r in rows if r.learned is not None]
    spread = max(abs(r.psnr - rows[0].psnr) for r in done)
    low, high = min(learned.values()), max(learned.values())
    verdict = "more" if low > 1 else "fewer" if high < 1 else "between fewer and more"
    pairs = ", ".join(f"{s}/{d} {v:.2f}x" for (s, d), v in learned.items())
    unfinished = [r.family.name for r in rows if r.learned is None]
    missing = f" ({', '.join(unfinished)} not finished)" if unfinished else ""
    return (
        f"- **{dataset}** (coded PSNR within {spread:.2f} dB of VQ's {rows[0].psnr:.2f} dB)"
        f"{missing}: under the transformer prior, sparse codes need **{low:.1f}x to "
        f"{high:.1f}x** the bits per pixel of one-of-K codes ({verdict} bits; {pairs}); under "
        f"the counts prior {min(counts.values()):.1f}x to {max(counts.values()):.1f}x."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="default: runs/compare-priors (-toy)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--prior-steps", type=int, help="override transformer-cpu's steps")
    parser.add_argument("--toy", action="store_true", help="a few steps per run, to test this")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    names = [family.name for family in DATASETS["photo"]]
    parser.add_argument(
        "--families",
        nargs="+",
        choices=names,
        help="train only these (several processes may train different families of one --work "
        "at once); writes no page",
    )
    parser.add_argument(
        "--collect",
        action="store_true",
        help="train nothing: write the page from what --work holds, unfinished families marked",
    )
    args = parser.parse_args()
    if args.toy and args.out.resolve() == RESULTS.resolve():
        parser.error("--toy numbers are meaningless: give --out somewhere else")
    steps = 3 if args.toy else args.prior_steps
    work = args.work or REPO / "runs" / ("compare-priors-toy" if args.toy else "compare-priors")
    work.mkdir(parents=True, exist_ok=True)
    transformer = prior_recipe(work, steps)
    families = None if args.collect else args.families or names
    started = time.time()
    with LoadSampler() as sampler:
        results = {
            dataset: compare(dataset, work / dataset, transformer, args.toy, sampler, families)
            for dataset in args.datasets
        }
    if args.families:
        return
    text = page(results, work, steps, time.time() - started)
    if not args.out.exists():
        args.out.write_text(RESULTS.read_text())
    if START not in args.out.read_text():
        with args.out.open("a") as page_file:
            page_file.write(f"\n{HEADING}\n\n{START}\n{END}\n")
    write_section(args.out, START, END, text)
    print(f"wrote {args.out}")


def page(results: dict[str, list[Row]], work: Path, steps: int | None, seconds: float) -> str:
    blocks = []
    for dataset, rows in results.items():
        step = next((r.step for r in rows if r.step is not None), None)
        at = f"Transformer bits at step {step} of {steps or 1500}" if step else ""
        unfinished = [r.family.name for r in rows if r.seconds is None]
        state = (
            f" ({', '.join(unfinished)} not finished when this page was written: each "
            "transformer is compared at the last step every measured one had evaluated)."
            if unfinished
            else " (every prior finished)."
        )
        judged = [r.quality for r in rows if r.quality and SAMPLE_FID in r.quality]
        accuracies = sorted({f"{100 * q['classifier/val/accuracy']:.0f}%" for q in judged})
        judge = (
            f" The classifier judging samples (one per run) is right on {' to '.join(accuracies)}"
            " of real validation digits."
            if judged
            else ""
        )
        blocks.append(
            f"### {dataset}\n\n```\n{commands(rows, work / dataset, steps)}\n```\n\n"
            f"{at}{state}{judge}\n\n{table(rows)}"
        )
    answers = "\n".join(answer(dataset, rows) for dataset, rows in results.items())
    return f"""Generated by `python tools/compare_priors.py` (resumable: it reuses the runs and
priors its --work holds; the last pass took {seconds / 60:.0f} minutes) on {cpu_name()}, {cores()}
cores. Each dataset's VQ tokenizer sets the target; every other family is the first of its
candidate sizes (RQ levels, FSQ levels, OMP/K-SVD sparsity) whose coded PSNR lands within
{TOLERANCE} dB of it, else the closest. Coded PSNR: the validation images decoded from their
codes as `laser compress` codes them (sparse coefficients quantized to 8 bits), which is what
the priors' bits pay for. Bits are held out (the validation codes), unconditional, per image
and per pixel of the image; "transformer vs counts" is the change in bits. The transformer
prior is the same recipe for every family; its wall time is the whole `laser prior` process,
with the mean 1-minute load average while it ran. Samples (digits only, `laser sample RUN_DIR
--prior transformer --evaluate`): one per validation image, with its class, against the
validation images, FID and KID on the features of a classifier LASER trains on the run's
digits (not comparable with published FIDs); the reconstructions' in parentheses. Conditional
accuracy: how often that classifier sees the requested class in a sample (in parentheses, in
a reconstruction). Photo patches have no labels to train that classifier and no Inception
weights here, so their sample columns are empty. A family without
numbers was not finished when this page was written (rerun the script: it resumes).

{(chr(10) * 2).join(blocks)}

Are sparse codes harder to model at equal reconstruction quality? Bits per pixel of the sparse
families over each one-of-K family's (OMP/VQ, ...):

{answers}"""


if __name__ == "__main__":
    main()
