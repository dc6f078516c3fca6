"""Quantization-aware fine-tuning: the decoder learns from the quantized code values that
decompression hands it, instead of the exact ones it was trained on.

The encoder and bottleneck stay frozen, so the codes, their quantizer and the priors stay what
they were; only the decoder's weights change, minimising the mean squared error of images
decoded from quantized codes (the distortion ``laser rd`` reports as PSNR). No bottleneck
option is needed. The result is a new run directory: other weights are another model, and
files compressed by the original run stay decodable by it. Its metrics.jsonl logs the loss and
the recipe's metrics on images decoded from quantized codes (what decompression gives) before
and after, over the validation batches the source run validated on; metrics.json holds the
latter, so that ``laser compare`` lists it beside its source.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader

from laser_core.assembly.build import Autoencoder, build_metrics
from laser_core.coding.codec import Codec
from laser_core.coding.identity import model_identity
from laser_core.coding.priors import build_priors
from laser_core.coding.quantize import ValueQuantizer
from laser_core.coding.symbols import quantized
from laser_core.errors import LaserError
from laser_core.plugin.contracts import BottleneckOutput
from laser_core.rundir import manifest
from laser_core.rundir.layout import MetricsLog, RunDir
from laser_core.rundir.lock import lock_run_dir
from laser_core.rundir.resume import start_record
from laser_core.runs.load import TrainedRun
from laser_core.training.evaluate import evaluate


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
    if not any(True for _ in run.model.decoder.parameters()):
        raise LaserError(
            f"the decoder of {run.run_dir} ('{run.recipe.decoder.name}') has no weights, so "
            "there is nothing to fine-tune; its reconstructions are already what the codes give"
        )
    with lock_run_dir(out_dir):
        model = copy.deepcopy(run.model).eval()  # the source run's codec stays as it was
        decompressing = _FromQuantizedCodes(model, quantizer).eval()
        log = MetricsLog(out_dir)
        log.append({"step": 0, "split": "val", **_validate(decompressing, run)})
        _train_decoder(decompressing, run, steps, log)
        final = _validate(decompressing, run)
        log.append({"step": steps, "split": "val", **final})
        for name in (RunDir.RECIPE, RunDir.PLUGINS):
            shutil.copyfile(run.run_dir / name, out_dir / name)
        start_record(out_dir, run.context)
        out.write_weights(model.state_dict())
        out.write_final_metrics({"step": steps, **final})
        sealed = [RunDir.RECIPE, RunDir.PLUGINS, RunDir.RUN_INFO, RunDir.WEIGHTS, RunDir.METRICS]
        manifest.seal(out_dir, sealed)
        tuned = TrainedRun(out_dir, run.recipe, model, run.context, run.data)
        priors = build_priors(tuned, model_identity(out_dir), quantizer.bits, codec.priors.images)
    return Codec(tuned, priors)


class _FromQuantizedCodes(nn.Module):
    """The autoencoder as decompression runs it: its codes quantized before decoding.
    ``forward(images)`` gives reconstructions and a bottleneck output of the quantized codes
    and their latents, for the recipe's metrics; only the decoder gets gradients."""

    def __init__(self, model: Autoencoder, quantizer: ValueQuantizer):
        super().__init__()
        self.model, self.quantizer = model, quantizer

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, BottleneckOutput]:
        bottleneck = self.model.bottleneck
        with torch.no_grad():
            codes = quantized(bottleneck.encode(self.model.encoder(images)), self.quantizer)
            latents = bottleneck.decode(codes)
        output = BottleneckOutput(latents, latents.new_zeros(()), codes)
        return self.model.decoder(latents), output


def _train_decoder(
    decompressing: _FromQuantizedCodes, run: TrainedRun, steps: int, log: MetricsLog
) -> None:
    """Adam on the decoder's mean squared error, the loss logged every train.log_every steps."""
    from tqdm.auto import tqdm  # imported here: the command line must start fast

    decoder = decompressing.model.decoder.train()
    optimizer = torch.optim.Adam(decoder.parameters(), lr=run.recipe.train.lr)
    batches = zip(range(1, steps + 1), _batches(run), strict=False)
    for step, batch in tqdm(batches, total=steps, desc="finetune", unit="step"):
        images = batch["image"]
        loss = F.mse_loss(decompressing(images)[0], images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % run.recipe.train.log_every == 0 or step == steps:
            log.append({"step": step, "split": "train", "loss": loss.item()})
    decoder.eval()


def _validate(decompressing: _FromQuantizedCodes, run: TrainedRun) -> dict[str, float]:
    """The recipe's metrics on images decoded from quantized codes, over the first
    train.eval_batches validation batches, as the source run validated."""
    recipe = run.recipe
    loader = DataLoader(run.data.val, batch_size=recipe.data.config.batch_size)
    metrics = build_metrics(recipe, run.context)
    batches = recipe.train.eval_batches
    return evaluate(decompressing, loader, metrics, Accelerator(), batches)


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
