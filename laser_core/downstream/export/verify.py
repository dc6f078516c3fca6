"""``laser export --verify``: read every stored batch back from disk, decode each form
(continuous, quantized, codes) to images and compare them with the originals (PSNR, SSIM)
and with the live model's reconstructions (largest absolute difference, which is 0 up to
float rounding when the export is faithful).

Writes ``verify/batch-NNNNNN.png`` (rows: originals, then the images decoded from continuous,
quantized and codes; whole frames for video) and ``verify/verify.json`` with the summary.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from accelerate import PartialState
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from laser_core.assembly.build import build_component
from laser_core.downstream.export.store import Export, read_batch
from laser_core.downstream.latents import (
    decode_each_form,
    encode_images,
    items_to_frames,
    samples_to_items,
)
from laser_core.files import atomic_write_text
from laser_core.plugin.contracts import Codes
from laser_core.runs.load import TrainedRun
from laser_core.training.evaluate import save_image_rows

FORMS = ("continuous", "quantized", "codes")
STORED = ("continuous", "quantized", "indices", "values")


def verify(run: TrainedRun, export: Export) -> dict[str, dict[str, float]]:
    """Per form: mean ``psnr`` and ``ssim`` against the originals and ``max_difference``
    from the live reconstructions, over the whole export."""
    clips = export.clips
    per_sample = 1 if clips is None else clips.items_per_clip
    dataset = getattr(run.data, export.metadata["split"])
    entries = export.metadata["batches"]
    items = [
        [i for s in entry["sample_ids"] for i in range(s * per_sample, (s + 1) * per_sample)]
        for entry in entries
    ]
    device = PartialState().device
    loader = DataLoader(
        dataset, batch_sampler=items, num_workers=run.recipe.data.config.loader_workers(device)
    )
    metrics = {name: build_component("metrics", {"name": name}) for name in ("psnr", "ssim")}
    model = run.model.to(device).eval()
    scores: dict[str, dict[str, list[torch.Tensor]]] = {f: {m: [] for m in metrics} for f in FORMS}
    difference = dict.fromkeys(FORMS, 0.0)
    for entry, batch in tqdm(zip(entries, loader, strict=True), total=len(entries), desc="verify"):
        stored = {
            name: samples_to_items(tensor, clips).to(device)
            for name, tensor in read_batch(export.root / entry["file"], STORED).items()
        }
        originals = batch["image"].to(device)
        live = encode_images(model, originals)
        codes = Codes(
            stored["indices"].long() if "indices" in stored else None, stored.get("values")
        )
        decoded = decode_each_form(
            model,
            stored["continuous"].permute(0, 3, 1, 2),
            stored["quantized"].permute(0, 3, 1, 2),
            codes,
        )
        frames = items_to_frames(originals, clips)
        for form, images in decoded.items():
            gap = (images - live.reconstructions).abs().max().item()
            difference[form] = max(difference[form], gap)
            for name, metric in metrics.items():
                values = metric.per_example(frames, items_to_frames(images, clips), live.output)
                scores[form][name].append(values.cpu())
        png = export.root / "verify" / f"{Path(entry['file']).stem}.png"
        save_image_rows([frames, *(items_to_frames(d, clips) for d in decoded.values())], png)
    summary = {
        form: {
            **{name: torch.cat(values).mean().item() for name, values in scores[form].items()},
            "max_difference": difference[form],
        }
        for form in FORMS
    }
    atomic_write_text(export.root / "verify" / "verify.json", json.dumps(summary, indent=2) + "\n")
    return summary
