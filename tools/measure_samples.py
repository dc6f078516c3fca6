"""Measure how good a prior's samples are on digits, and write the numbers into docs/priors.md
between its markers.

    python tools/measure_samples.py                    # trains what it needs into --work
    python tools/measure_samples.py --run-steps 50 --prior-steps 50 --out /tmp/priors.md

It trains the digits tokenizer (recipes/classify-digits.yaml without its task) and the
transformer-cpu prior on its codes (class-conditional: digits are labelled), then runs ``laser
sample --evaluate``: FID and KID of one sample per validation digit, asked for that digit's
class, against the FID and KID of the run's reconstructions of them, both through the
classifier LASER trains on the real digits, and that classifier's accuracy on the samples.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from doc_section import write_section
from machine import LoadSampler, cores
from measure_prior import timed_laser

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "priors.md"
START = "<!-- sample quality: start -->"
END = "<!-- sample quality: end -->"
PRIOR = "transformer-cpu"


def laser(load: LoadSampler, *args: str) -> tuple[str, str]:
    """Run a laser command (measure_prior's); returns it as the docs show it, and how long it
    took and under what load."""
    shown, took = timed_laser(load, *args)
    return shown, f"{took.wall:.1f} min (CPU {took.cpu:.1f} min) at load {took.load:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "measure-samples")
    parser.add_argument("--run-steps", type=int, help="override the tokenizer's train.steps")
    parser.add_argument("--prior-steps", type=int, help=f"override {PRIOR}'s steps")
    parser.add_argument("--temperature", default="1.0")
    parser.add_argument("--top-k", help="sample among the k likeliest symbols")
    parser.add_argument("--out", type=Path, help="write the page here instead of docs/priors.md")
    args = parser.parse_args()
    run = args.work / "digits"
    steps = []
    with LoadSampler() as load:
        if not (run / "model.safetensors").is_file():
            overrides = [f"train.steps={args.run_steps}"] if args.run_steps else []
            tokenizer = ["run", "recipes/classify-digits.yaml", "--run-dir", str(run), "~task"]
            steps.append(("tokenizer", *laser(load, *tokenizer, *overrides)))
        recipe = f"recipes/priors/{PRIOR}.yaml"
        if args.prior_steps:
            short = args.work / f"{PRIOR}.yaml"
            text = (REPO / recipe).read_text()
            short.write_text(text.replace("steps: 1500", f"steps: {args.prior_steps}"))
            recipe = str(short)
        if not (run / "priors" / PRIOR / "model.safetensors").is_file():
            steps.append(("prior", *laser(load, "prior", str(run), recipe)))
        sampling = ["--temperature", args.temperature]
        if args.top_k:
            sampling += ["--top-k", args.top_k]
        grid = args.work / "samples.png"
        evaluate = ["sample", str(run), "--prior", PRIOR, "--evaluate", *sampling, "-o", str(grid)]
        steps.append(("evaluation", *laser(load, *evaluate)))
    m = json.loads((run / "priors" / PRIOR / "metrics.json").read_text())
    psnr = json.loads((run / "metrics.json").read_text()).get("psnr")

    def row(kind: str) -> str:
        kid, spread = (1000 * m[f"classifier/{kind}/{key}"] for key in ("kid", "kid_std"))
        return (
            f"| {kind} | {m[f'classifier/{kind}/fid']:.2f} | {kid:.2f} ± {spread:.2f} | "
            f"{100 * m[f'classifier/{kind}/accuracy']:.1f}% |"
        )

    per_class = " · ".join(
        f"{label}: {100 * m[f'classifier/samples/accuracy/{label}']:.0f}%" for label in range(10)
    )
    shown = "\n".join(command for _, command, _ in steps)
    noisy = any(
        m[f"classifier/{kind}/kid_std"] > abs(m[f"classifier/{kind}/kid"])
        for kind in ("samples", "reconstructions")
    )
    noise = (
        "\n- KID's spread over subsets exceeds its value at this size (halves of "
        f"{int(m['samples/images']) // 2} images): read FID here."
        if noisy
        else ""
    )
    top_k = f", top-k {int(m['samples/top_k'])}" if m["samples/top_k"] else ""
    times = "; ".join(f"{what} {took}" for what, _, took in steps)
    text = f"""Measured by `python tools/measure_samples.py{_options(args)}` (on {cores()} shared
cores; {times}), which ran:

```
{shown}
```

{int(m["samples/images"])} validation digits (16x16), tokenizer PSNR {psnr:.1f} dB; samples drawn at
temperature {m["samples/temperature"]:g}{top_k}, each asked for the class of one validation
digit. FID and KID (x 1000, ± its spread over subsets) through the features of LASER's own
classifier, whose accuracy on real validation digits is {100 * m["classifier/val/accuracy"]:.1f}%:
**not comparable to published FIDs**, only between priors and runs of this dataset.

| images | FID | KID x 1000 | classified as the asked class |
| --- | ---: | ---: | ---: |
{row("samples")}
{row("reconstructions")}

- The classifier takes **{100 * m["classifier/samples/accuracy"]:.1f}%** of the
  class-conditional samples for the class they were asked for; per class:
  {per_class}.
- Reconstructions are the floor a perfect prior of these codes reaches: the same decoder, the
  codes of the real digits.{noise}"""
    target = args.out or DOC
    if args.out and not args.out.exists():
        args.out.write_text(DOC.read_text())
    write_section(target, START, END, text)
    print(f"wrote {target}")


def _options(args: argparse.Namespace) -> str:
    """The command-line options given, as the docs show the command."""
    given = [
        f"--{name.replace('_', '-')} {value}"
        for name, value in (
            ("run_steps", args.run_steps),
            ("prior_steps", args.prior_steps),
            ("top_k", args.top_k),
        )
        if value
    ]
    if args.temperature != "1.0":
        given.append(f"--temperature {args.temperature}")
    return "".join(f" {option}" for option in given)


if __name__ == "__main__":
    main()
