"""Measure what a learned prior buys on the quickstart recipe's VQ codes, and write the numbers
into docs/priors.md between its markers.

    python tools/measure_prior.py                      # trains what it needs into --work
    python tools/measure_prior.py --run-steps 50 --prior-steps 50 --out /tmp/priors.md

It trains the quickstart run (unless --work holds it), the counts and transformer-cpu priors on
its codes, and then compares (1) held-out bits per image of the two priors and (2) the bytes of
one ``.lsr`` file holding every validation patch, coded under the transformer prior, against the
prior's cross-entropy plus the container's headers.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from doc_section import write_section
from machine import LoadSampler, cores

from laser_core.coding.container import CodedImage, Container, pack
from laser_core.coding.files import compress_files
from laser_core.coding.identity import IDENTITY_BYTES
from laser_core.data.images import to_pixels, write_png
from laser_core.rundir.layout import RunDir
from laser_core.runs.load import load_run

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "priors.md"
START = "<!-- prior measurements: start -->"
END = "<!-- prior measurements: end -->"


def laser(*args: str) -> str:
    """Run a laser command, echoing it; returns it as the docs show it."""
    command = ["laser", *args]
    print("$", shlex.join(command), flush=True)
    subprocess.run([sys.executable, "-m", "laser_core.cli", *args], check=True, cwd=REPO)
    return shlex.join(command)


@dataclass
class Timing:
    """A command's wall time and CPU time (user + system, all its threads) in minutes, and
    the mean load while it ran."""

    wall: float
    cpu: float
    load: float


def timed_laser(load: LoadSampler, *args: str) -> tuple[str, Timing]:
    """:func:`laser`, and how long it took."""
    start, before = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    shown = laser(*args)
    end, after = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return shown, Timing((end - start) / 60, cpu / 60, load.mean(start, end))


def header_bytes(images: int, size: tuple[int, int], grid: tuple[int, int]) -> int:
    """Bytes of a version-2 container of ``images`` images around an empty stream."""
    identity = bytes(IDENTITY_BYTES)
    empty = [CodedImage(size, grid, b"")] * images
    return len(pack(Container(identity, identity, 3, empty, b"")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "measure-prior")
    parser.add_argument("--run-steps", type=int, help="override the quickstart's train.steps")
    parser.add_argument("--prior-steps", type=int, help="override transformer-cpu's steps")
    parser.add_argument("--out", type=Path, help="write the page here instead of docs/priors.md")
    args = parser.parse_args()
    run = args.work / "quickstart"
    commands = []
    if not (run / "model.safetensors").is_file():
        steps = [f"train.steps={args.run_steps}"] if args.run_steps else []
        commands.append(laser("run", "recipes/quickstart.yaml", "--run-dir", str(run), *steps))
    recipes = {
        "counts": "recipes/priors/counts.yaml",
        "transformer-cpu": "recipes/priors/transformer-cpu.yaml",
    }
    if args.prior_steps:
        text = (REPO / recipes["transformer-cpu"]).read_text()
        short = args.work / "transformer-cpu.yaml"
        short.write_text(text.replace("steps: 1500", f"steps: {args.prior_steps}"))
        recipes["transformer-cpu"] = str(short)
    timing = "(the transformer prior existed already in --work: not timed)"
    for name, recipe in recipes.items():
        if not (run / "priors" / name / "model.safetensors").is_file():
            with LoadSampler() as load:
                shown, took = timed_laser(load, "prior", str(run), recipe)
            commands.append(shown)
            if name == "transformer-cpu":
                timing = (
                    f"`{shown}` took {took.wall:.1f} minutes of wall time on {cores()} cores "
                    f"at a mean load of {took.load:.1f} (other work shared them), and "
                    f"**{took.cpu:.1f} minutes of CPU time**: on {cores()} idle cores its "
                    f"wall time is at most that (less when its threads run in parallel)"
                )
    counts = RunDir(run / "priors" / "counts").read_final_metrics()
    learned = RunDir(run / "priors" / "transformer-cpu").read_final_metrics()
    reduction = 1 - learned["bits_per_image"] / counts["bits_per_image"]

    patches = args.work / "val-patches"
    patches.mkdir(exist_ok=True)
    val = load_run(run).data.val
    paths = []
    for number in range(len(val)):
        path = patches / f"{number:04d}.png"
        write_png(to_pixels(val[number]["image"]), path)
        paths.append(path)
    files = {}
    for prior in (None, "transformer-cpu"):
        output = args.work / f"val-{prior or 'counts'}.lsr"
        files[prior] = compress_files(run, paths, output, prior)
    written = files["transformer-cpu"]
    side = int(val[0]["image"].shape[-1])
    grid = (side // 4, side // 4)
    headers = header_bytes(len(paths), (side, side), grid)
    ideal = written.rates.cross_entropy_bits / 8 + headers
    overhead = written.size / ideal - 1

    rows = [
        ("counts", counts, files[None].size),
        ("transformer-cpu", learned, written.size),
    ]
    table = "\n".join(
        [
            "| prior | held-out bits per image | bits per pixel | `.lsr` bytes, all val patches |",
            "| --- | ---: | ---: | ---: |",
            *(
                f"| {name} | {m['bits_per_image']:.1f} | {m['bits_per_pixel']:.4f} | {size} |"
                for name, m, size in rows
            ),
        ]
    )
    shown = "\n".join(commands) or "(the runs existed already in --work)"
    text = f"""Measured by `python tools/measure_prior.py`, which ran:

```
{shown}
```

{table}

- On {int(learned["val_images"])} held-out patches the transformer prior needs
  **{100 * reduction:.1f}% fewer bits** than the counts prior
  ({learned["bits_per_image"]:.1f} against {counts["bits_per_image"]:.1f} bits per image).
- One `.lsr` file of all {len(paths)} patches coded under the transformer prior holds
  {written.size} bytes: the prior's cross-entropy {written.rates.cross_entropy_bits / 8:.1f} bytes
  plus {headers} bytes of headers ({len(paths)} image entries of 20 bytes) make {ideal:.1f} bytes,
  so the range coder spends **{100 * overhead:+.2f}%** over the ideal (one stream per file: a
  32-bit word of padding per file, not per image).
- Training time: {timing}."""
    target = args.out or DOC
    if args.out and not args.out.exists():
        args.out.write_text(DOC.read_text())
    write_section(target, START, END, text)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
