"""``laser export``: a finished run's latents and codes for a dataset, batch by batch, for
other tools to read.

Each batch of samples is encoded once (eval mode, in dataset order) and stored as

    EXPORT_DIR/
      metadata.json            what is below, how it was made, and ``complete: true`` at the end
      batches/batch-000000.safetensors     one file per batch (default format), or
      batches/batch-000000/NAME.npy        one folder per batch (--format npy)
      symbols.safetensors      slot{d}: float32 (alphabet_size, dim), what each code symbol
                               stands for (codebook vectors, dictionary atoms); codes with
                               indices only
      preview.safetensors      images, reconstructions: float32 (n, C, H, W) in [-1, 1], the
                               first up to 16 images (for video: frames of the first clip)
      verify/                  with --verify: a side-by-side PNG per batch, verify.json

Arrays of a batch of n samples, channels last, images / video:

    continuous   float32 (n, h, w, dim) / (n, frames, h, w, dim)   encoder output
    quantized    float32 same as continuous                         bottleneck output
    indices      int32   (n, h, w, depth) / (n, frames, h, w, depth) code symbols (cast to
                 int64 to decode); absent for codes without indices (gaussian)
    values       float32 same as indices; sparse coefficients, or a gaussian's means; absent
                 for one-of-K codes (vq, rq, gumbel)
    sample_ids   int64   (n,)  position of each sample in the exported split
    labels       int64   (n,)  class of each sample, when the dataset is labelled

A video sample is a clip: frames encoded one by one, and for a dataset cut into a patch
grid (rows, cols) the patches' latents stitched back, so h = rows * patch_h (the grid is in
``metadata.clips``). ``metadata.json`` also holds every array's full shape and dtype, the
bottleneck's config and code spec, the source run (directory, weights' SHA-256, step), the
data block and split, per-batch sample ids and labels, and ``compression``: the raw input's
bits (8 per pixel and channel) against a fixed-length code's (ceil(log2 K) per index, 32 per
value), and their ratio.

Resuming: rerunning the same command skips every complete batch file; hidden temporaries of
an interrupted batch are deleted and the batch written again. A directory holding an export
of another run, dataset or format is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from accelerate import PartialState
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.dataloader import default_collate
from tqdm.auto import tqdm

from laser_core.downstream.export.store import (
    METADATA,
    PREVIEW,
    SYMBOLS,
    Format,
    batch_path,
    read_batch,
    remove_temporaries,
    write_batch,
)
from laser_core.downstream.latents import (
    Latents,
    code_bits,
    encode_images,
    items_to_frames,
    items_to_samples,
    symbol_vectors,
)
from laser_core.errors import LaserError
from laser_core.files import atomic_write_text
from laser_core.plugin.contracts import ClipLayout
from laser_core.rundir.layout import RunDir, sha256
from laser_core.runs.load import TrainedRun

Split = Literal["train", "val"]
PREVIEW_COUNT = 16


@dataclass
class ExportResult:
    """Which batches this call wrote, which were already complete, and which half-written
    temporaries of an interrupted export it deleted."""

    root: Path
    written: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)


def export(run: TrainedRun, root: Path, split: Split, format: Format) -> ExportResult:
    """Encode ``split`` of the run's dataset into ``root``, resuming what is there."""
    dataset: Dataset = getattr(run.data, split)
    plan = _plan(run, dataset, split, format)
    _check_same_export(root, plan)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / METADATA, _metadata_text({**plan, "complete": False}))
    result = ExportResult(root, removed=remove_temporaries(root))
    device = PartialState().device
    model = run.model.to(device).eval()
    spec = model.bottleneck.code_spec()
    symbols = symbol_vectors(model, spec)
    if symbols:
        write_batch(root / SYMBOLS, symbols, "safetensors")

    per_batch = plan["batch_size"] * _items_per_sample(run.data.clips)
    pending = []
    for index in range(plan["num_batches"]):
        done = batch_path(root, index, format).exists()
        (result.skipped if done else pending).append(index)
    sampler = [_batch_items(index, per_batch, len(dataset)) for index in pending]
    loader = DataLoader(
        dataset, batch_sampler=sampler, num_workers=run.recipe.data.config.loader_workers(device)
    )
    progress = tqdm(
        total=plan["num_batches"], initial=len(result.skipped), desc="export", unit="batch"
    )
    for index, batch in zip(pending, loader, strict=True):
        images = batch["image"].to(device)
        latents = encode_images(model, images)
        if index == 0:
            _write_preview(root, images, latents, run.data.clips)
        arrays = _arrays(latents, batch, index * plan["batch_size"], run.data.clips)
        write_batch(batch_path(root, index, format), arrays, format)
        result.written.append(index)
        progress.update(1)
    progress.close()

    entries = [_entry(root, index, format) for index in range(plan["num_batches"])]
    atomic_write_text(
        root / METADATA, _metadata_text({**plan, "batches": entries, "complete": True})
    )
    return result


def _metadata_text(metadata: dict[str, Any]) -> str:
    """Indented JSON with one line per batch, so that long id lists stay readable."""
    batches = metadata.get("batches", [])
    text = json.dumps({**metadata, "batches": []}, indent=2)
    if batches:
        lines = ",\n".join(f"    {json.dumps(entry)}" for entry in batches)
        text = text.replace('"batches": []', f'"batches": [\n{lines}\n  ]', 1)
    return text + "\n"


def _items_per_sample(clips: ClipLayout | None) -> int:
    return 1 if clips is None else clips.items_per_clip


def _batch_items(index: int, per_batch: int, total: int) -> list[int]:
    return list(range(index * per_batch, min((index + 1) * per_batch, total)))


def _arrays(
    latents: Latents, batch: dict[str, Any], first_sample: int, clips: ClipLayout | None
) -> dict[str, torch.Tensor]:
    """The stored arrays of one batch, channels last, as samples (see the module doc)."""

    def samples(x: torch.Tensor) -> torch.Tensor:
        return items_to_samples(x, clips)

    arrays = {
        "continuous": samples(latents.continuous.float().permute(0, 2, 3, 1)),
        "quantized": samples(latents.quantized.float().permute(0, 2, 3, 1)),
    }
    codes = latents.codes
    if codes.indices is not None:
        arrays["indices"] = samples(codes.indices.int())
    if codes.values is not None:
        arrays["values"] = samples(codes.values.float())
    count = len(arrays["continuous"])
    arrays["sample_ids"] = torch.arange(first_sample, first_sample + count)
    if "label" in batch:
        arrays["labels"] = batch["label"][:: _items_per_sample(clips)].long()
    return arrays


def _write_preview(
    root: Path, images: torch.Tensor, latents: Latents, clips: ClipLayout | None
) -> None:
    """Originals and reconstructions (n, C, H, W) of the first images (video: whole frames
    of the first clip) for ``laser analyze``'s reconstruction grid."""
    preview = {
        name: items_to_frames(x, clips)[:PREVIEW_COUNT].float()
        for name, x in (("images", images), ("reconstructions", latents.reconstructions))
    }
    write_batch(root / PREVIEW, preview, "safetensors")


def _entry(root: Path, index: int, format: Format) -> dict[str, Any]:
    """Metadata of one stored batch, read from the batch itself so that skipped and new
    batches are described alike."""
    path = batch_path(root, index, format)
    arrays = read_batch(path, ("sample_ids", "labels"))
    labels = arrays.get("labels")
    return {
        "file": path.relative_to(root).as_posix(),
        "samples": len(arrays["sample_ids"]),
        "sample_ids": arrays["sample_ids"].tolist(),
        "labels": None if labels is None else labels.tolist(),
    }


def _plan(run: TrainedRun, dataset: Dataset, split: Split, format: Format) -> dict[str, Any]:
    """Everything metadata.json says before any batch is written: a resumed export must
    agree with it exactly."""
    clips = run.data.clips
    per_sample = _items_per_sample(clips)
    num_samples = len(dataset) // per_sample
    if num_samples == 0:
        raise LaserError(f"the {split} split of dataset '{run.recipe.data.name}' is empty")
    batch_size = run.recipe.data.config.batch_size
    probe = default_collate([dataset[i] for i in range(per_sample)])
    model = run.model.eval()
    latents = encode_images(model, probe["image"])
    arrays = _arrays(latents, probe, 0, clips)
    spec = model.bottleneck.code_spec()
    image = items_to_samples(probe["image"].permute(0, 2, 3, 1), clips)[0]
    code = arrays.get("indices", arrays.get("values"))
    positions = code[0, ..., 0].numel()
    bits = {
        "raw_bits_per_sample": image.numel() * 8,
        "code_bits_per_sample": positions * code_bits(spec, code.shape[-1]),
    }
    time_axis = "" if clips is None else "frame, "
    axes = {
        "continuous": f"(sample, {time_axis}height, width, dim)",
        "quantized": f"(sample, {time_axis}height, width, dim)",
        "indices": f"(sample, {time_axis}height, width, depth)",
        "values": f"(sample, {time_axis}height, width, depth)",
        "sample_ids": "(sample,)",
        "labels": "(sample,)",
    }
    recipe = run.recipe
    return {
        "format": format,
        "layout": "images" if clips is None else "video",
        "split": split,
        "num_samples": num_samples,
        "batch_size": batch_size,
        "num_batches": -(-num_samples // batch_size),
        "arrays": {
            name: {
                "shape": [num_samples, *tensor.shape[1:]],
                "dtype": str(tensor.dtype).removeprefix("torch."),
                "axes": axes[name],
            }
            for name, tensor in arrays.items()
        },
        "image": dict(zip(("height", "width", "channels"), image.shape[-3:], strict=True)),
        "clips": None if clips is None else {"frames": clips.frames, "grid": list(clips.grid)},
        "num_classes": run.data.num_classes,
        "code_spec": {"alphabet_sizes": spec.alphabet_sizes, "has_values": spec.has_values},
        "compression": {
            **bits,
            "ratio": bits["raw_bits_per_sample"] / bits["code_bits_per_sample"],
        },
        "source": _source(run),
        "data": recipe.data.resolved(),
        "encoder": recipe.encoder.resolved(),
        "bottleneck": recipe.bottleneck.resolved(),
        "decoder": recipe.decoder.resolved(),
    }


def _source(run: TrainedRun) -> dict[str, Any]:
    files = RunDir(run.run_dir)
    return {
        "run_dir": str(run.run_dir.resolve()),
        "weights_sha256": sha256(files.model_safetensors),
        "step": files.read_final_metrics().get("step"),
    }


def _check_same_export(root: Path, plan: dict[str, Any]) -> None:
    path = root / METADATA
    if not path.is_file():
        if root.is_dir() and any(root.iterdir()):
            raise LaserError(f"{root} is not empty and holds no export; choose another --out")
        return
    found = json.loads(path.read_text())
    differing = [
        key for key, value in json.loads(json.dumps(plan)).items() if found.get(key) != value
    ]
    if differing:
        raise LaserError(
            f"{root} holds an export that differs in {', '.join(differing)}; rerun with the "
            "same run, data and --format to resume it, or choose another --out"
        )
