"""What a learned codec's rate does when it codes a whole photograph rather than the crops it
trained on: each run's model on each held-out photograph, once whole and once cut into tiles
of its training crop side, PSNR and the rate of its own likelihoods (no file written: this
compares the model, not the coder). With --write-docs, replace the section "Whole images and
training crops" of docs/compression.md.

    python tools/whole_vs_tiles.py RUN_DIR [RUN_DIR ...] [--write-docs]

A model whose rate grows on whole images learnt something of its crops' edges: a latent of a
64-pixel crop sees the zero padding, and a hyperprior's side information, four times coarser,
is then a 1x1 grid that is all edge.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import torch
from doc_section import publish

from laser_core.coding.rd import DEFAULT_IMAGES
from laser_core.data.images import from_pixels
from laser_core.data.photos import sample_photo
from laser_core.runs.load import load_run

DOC = Path(__file__).resolve().parents[1] / "docs" / "compression.md"
START, END = "<!-- whole vs tiles: start -->", "<!-- whole vs tiles: end -->"


@torch.no_grad()
def measure(run_dir: Path) -> list[tuple[str, str, float, float]]:
    """(image, "whole" or "tiles", PSNR, bpp) of one run on each held-out photograph, cropped
    to a multiple of the run's crop side so that both see the same pixels."""
    run = load_run(run_dir)
    model, side = run.model.eval(), run.context.image_size
    rows = []
    for name in DEFAULT_IMAGES:
        image = from_pixels(sample_photo(name))[None]
        height, width = (size - size % side for size in image.shape[2:])
        image = image[..., :height, :width]
        tiles = image.unfold(2, side, side).unfold(3, side, side)
        tiles = tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, image.shape[1], side, side)
        for label, batch in (("whole", image), ("tiles", tiles)):
            output = model.bottleneck(model.encoder(batch))
            reconstruction = model.decoder(output.quantized).clamp(-1, 1)
            mse = float(((reconstruction - batch) ** 2).mean()) * 127.5**2
            psnr = 10 * torch.log10(torch.tensor(255**2 / mse)).item()
            rows.append((name, label, psnr, float(output.bits.sum()) / (height * width)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    lines = [
        "```bash",
        shlex.join(["python", "tools/whole_vs_tiles.py", *map(str, args.run_dirs)]),
        "```",
        "",
        "| run | bottleneck | image | PSNR whole | PSNR tiles | bpp whole | bpp tiles | ratio |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run_dir in args.run_dirs:
        bottleneck = load_run(run_dir).recipe.bottleneck.name
        rows = measure(run_dir)
        for whole, tiles in zip(rows[::2], rows[1::2], strict=True):
            lines.append(
                f"| {run_dir} | {bottleneck} | {whole[0]} | {whole[2]:.2f} | {tiles[2]:.2f} "
                f"| {whole[3]:.3f} | {tiles[3]:.3f} | {whole[3] / tiles[3]:.2f}x |"
            )
    publish(DOC, START, END, "\n".join(lines), args.write_docs)


if __name__ == "__main__":
    main()
