"""Quantization-aware fine-tuning: the decoder learns from the quantized code values that
decompression hands it, instead of the exact ones it was trained on.

The encoder and bottleneck stay frozen, so the codes, their quantizer and the priors stay what
they were; only the decoder's weights change, minimising the mean squared error of images
decoded from quantized codes (the distortion ``laser rd`` reports as PSNR). No bottleneck
option is needed. The result is a new run directory: other weights are another model, and
files compressed by the original run stay decodable by it.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from laser_core.coding.codec import Codec
from laser_core.coding.identity import model_identity
from laser_core.coding.priors import build_priors
from laser_core.coding.symbols import quantized
from laser_core.errors import LaserError
from laser_core.rundir import manifest
from laser_core.rundir.layout import RunDir
from laser_core.rundir.resume import start_record
from laser_core.runs.load import TrainedRun


def finetune_decoder(codec: Codec, out_dir: Path, steps: int) -> Codec:
    """Train ``codec``'s decoder for ``steps`` steps on decoded quantized codes of its training
    set (the recipe's batch size and lr, seeded by its seed); write the run to ``out_dir`` with
    priors counted like the source's, and return its codec."""
    run, quantizer = codec.run, codec.priors.quantizer
    if quantizer is None:
        raise LaserError(
            f"the codes of {run.run_dir} carry no values to quantize; quantization-aware "
            "fine-tuning applies to sparse (omp, ksvd) and gaussian bottlenecks"
        )
    out = RunDir(out_dir)
    if out.recipe_yaml.exists():
        raise LaserError(f"{out_dir} already holds a run; choose another output folder")
    model = copy.deepcopy(run.model).eval()  # the source run's codec stays as it was
    decoder = model.decoder.train()
    optimizer = torch.optim.Adam(decoder.parameters(), lr=run.recipe.train.lr)
    for _, batch in zip(range(steps), _batches(run), strict=False):
        images = batch["image"]
        with torch.no_grad():
            codes = model.bottleneck.encode(model.encoder(images))
            latents = model.bottleneck.decode(quantized(codes, quantizer))
        loss = F.mse_loss(decoder(latents), images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    decoder.eval()

    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (RunDir.RECIPE, RunDir.PLUGINS):
        shutil.copyfile(run.run_dir / name, out_dir / name)
    start_record(out_dir, run.context)
    out.write_weights(model.state_dict())
    manifest.seal(out_dir, [RunDir.RECIPE, RunDir.PLUGINS, RunDir.RUN_INFO, RunDir.WEIGHTS])
    tuned = TrainedRun(out_dir, run.recipe, model, run.context, run.data)
    priors = build_priors(tuned, model_identity(out_dir), quantizer.bits, codec.priors.images)
    return Codec(tuned, priors)


def _batches(run: TrainedRun) -> Iterator[dict[str, torch.Tensor]]:
    """Shuffled training batches, epoch after epoch."""
    generator = torch.Generator().manual_seed(run.recipe.seed)
    loader = DataLoader(
        run.data.train,
        batch_size=run.recipe.data.config.batch_size,
        shuffle=True,
        drop_last=True,
        generator=generator,
    )
    while True:
        yield from loader
