"""What ``laser prior RUN_DIR RECIPE`` does: train a prior on a finished run's codes.

The codes are exported once (export.py); a closed-form prior (counts) is fitted, any other is
trained by AdamW on its bits per token through Accelerate, with checkpoints that
``--resume`` continues exactly (batches are drawn from a generator seeded by the step). The
prior lands in ``RUN_DIR/priors/NAME`` (coding/trained_priors.py) with its held-out bits and
a grid of samples.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from safetensors.torch import save_file

from laser_core.coding.codec import Codec
from laser_core.coding.identity import model_identity
from laser_core.coding.trained_priors import (
    PRIOR_FILE,
    SEALED,
    WEIGHTS_FILE,
    build_prior,
    load_trained_prior,
    prior_dir,
    prior_record,
)
from laser_core.errors import LaserError
from laser_core.files import atomic_write_text
from laser_core.plugin.priors import Prior
from laser_core.priors.export import ExportedTokens, Tokens, export_tokens
from laser_core.priors.recipe import LoadedPriorRecipe, PriorTrainConfig, load_prior_recipe
from laser_core.priors.sample import sample_images, write_grid
from laser_core.rundir import checkpoint, manifest
from laser_core.rundir.layout import MetricsLog, RunDir

log = logging.getLogger(__name__)

RECIPE_FILE = "prior.yaml"
SAMPLES_FILE = "samples.png"
EVAL_BATCH = 256


@dataclass
class PriorResult:
    """A trained prior's folder and its held-out bits (``bits_per_image``,
    ``bits_per_pixel``, ``bits_per_token``, unconditional: what coding pays)."""

    directory: Path
    metrics: dict[str, float]


def train_prior(run_dir: str | Path, recipe_path: str | Path, resume: bool = False) -> PriorResult:
    """Train the prior ``recipe_path`` describes on the codes of ``run_dir``."""
    run_dir = Path(run_dir)
    recipe = load_prior_recipe(Path(recipe_path))
    out = prior_dir(run_dir, recipe.name)
    _check_start(out, resume, run_dir, Path(recipe_path))
    codec = Codec.open(run_dir)
    exported = export_tokens(codec)
    set_seed(recipe.train.seed)
    prior = build_prior(recipe.block, exported.spec, recipe.component.provider)
    out.mkdir(parents=True, exist_ok=True)
    record = prior_record(
        recipe.block,
        recipe.component.provider,
        exported.spec,
        model_identity(run_dir),
        codec.priors.identity,
    )
    atomic_write_text(out / PRIOR_FILE, json.dumps(record, indent=2) + "\n")
    atomic_write_text(out / RECIPE_FILE, json.dumps(recipe.resolved(), indent=2) + "\n")
    train = exported.train
    if not prior.fit(train.tokens, train.labels):
        prior = _gradient_train(prior, exported, recipe, out, resume)
    metrics = held_out_bits(prior, exported.val, exported.pixels_per_tile)
    save_file({k: v.contiguous() for k, v in prior.state_dict().items()}, str(out / WEIGHTS_FILE))
    RunDir(out).write_final_metrics(metrics)
    manifest.seal(out, SEALED)
    if recipe.train.samples:
        trained = load_trained_prior(
            run_dir, recipe.name, model_identity(run_dir), exported.spec, codec.priors.identity
        )
        write_grid(sample_images(codec, trained, recipe.train.samples), out / SAMPLES_FILE)
    return PriorResult(out, metrics)


def _check_start(out: Path, resume: bool, run_dir: Path, recipe_path: Path) -> None:
    if resume:
        if not checkpoint.complete_checkpoints(out):
            raise LaserError(
                f"{out} has no checkpoint to resume from; train it with `laser prior {run_dir} "
                f"{recipe_path}`"
            )
        return
    if out.exists():
        raise LaserError(
            f"{out} exists already; continue it with `laser prior {run_dir} {recipe_path} "
            f"--resume`, or delete it (or give the recipe another name:) to train anew"
        )


@torch.no_grad()
def held_out_bits(prior: Prior, val: Tokens, pixels_per_tile: int) -> dict[str, float]:
    """Mean bits of the held-out codes under ``prior``, unconditional, per image (one tile),
    per pixel and per token."""
    was_training = prior.training
    prior.eval()
    device = next(iter(prior.parameters()), torch.empty(0)).device
    total = 0.0
    for start in range(0, len(val), EVAL_BATCH):
        tokens = val.tokens[start : start + EVAL_BATCH].to(device)
        total += float(-prior.log_prob(tokens).double().sum())
    prior.train(was_training)
    per_image = total / max(1, len(val))
    return {
        "bits_per_image": per_image,
        "bits_per_pixel": per_image / pixels_per_tile,
        "bits_per_token": per_image / prior.spec.tokens,
        "val_images": len(val),
    }


def _gradient_train(
    prior: Prior,
    exported: ExportedTokens,
    recipe: LoadedPriorRecipe,
    out: Path,
    resume: bool,
) -> Prior:
    config = recipe.train
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=config.precision)
    optimizer = torch.optim.AdamW(prior.parameters(), config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup(config))
    model, optimizer, scheduler = accelerator.prepare(prior, optimizer, scheduler)
    metrics_log = MetricsLog(out)
    state = checkpoint.TrainerState()
    if resume:
        state = checkpoint.load(accelerator, out)
        metrics_log.truncate_after(state.step)
    elif metrics_log.path.exists():
        metrics_log.path.unlink()
    train = exported.train
    tokens = train.tokens.to(accelerator.device)
    labels = None if train.labels is None else train.labels.to(accelerator.device)
    model.train()
    for step in range(state.step, config.steps):
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        index = torch.randint(len(train), (config.batch_size,), generator=generator)
        index = index.to(accelerator.device)
        with accelerator.autocast():
            bits = -model(tokens[index], None if labels is None else labels[index])
        loss = bits.mean() / prior.spec.tokens
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        if not math.isfinite(float(loss.detach())):
            raise LaserError(f"training the prior diverged at step {done} (loss {float(loss)})")
        record = {"step": done, "split": "train", "bits_per_token": float(loss.detach())}
        metrics_log.append(record)
        if done % config.eval_every == 0 or done == config.steps:
            unwrapped = accelerator.unwrap_model(model)
            held_out = held_out_bits(unwrapped, exported.val, exported.pixels_per_tile)
            metrics_log.append({"step": done, "split": "val", **held_out})
            log.info("prior step %d: %.4f bits per pixel", done, held_out["bits_per_pixel"])
        if done % config.checkpoint_every == 0 or done == config.steps:
            checkpoint.save(
                accelerator, out, checkpoint.TrainerState(done, done), config.keep_checkpoints
            )
    return accelerator.unwrap_model(model).eval()


def _warmup(config: PriorTrainConfig):
    """A linear warmup, then the full learning rate: a schedule that does not depend on
    ``steps``, so a resumed run may be given more steps and still continue exactly."""
    return lambda step: min(1.0, (step + 1) / (config.warmup_steps + 1))
