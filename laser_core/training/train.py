"""The Accelerate training loop: one loop for whatever encoder, bottleneck and decoder a
recipe assembled, on one CPU or many GPUs, resumable to the exact batch."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import DistributedDataParallelKwargs, GradientAccumulationPlugin, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from laser_core.assembly.build import (
    Autoencoder,
    build_data,
    build_discriminator,
    build_losses,
    build_metrics,
    build_model,
    build_task,
)
from laser_core.assembly.losses import ImageLosses
from laser_core.errors import LaserError
from laser_core.plugin.contracts import EntropyCodedBottleneck
from laser_core.plugin.registry import default_registry
from laser_core.recipes.model import Recipe, TrainConfig
from laser_core.rundir import checkpoint, manifest
from laser_core.rundir import layout as rundir
from laser_core.rundir import resume as resuming
from laser_core.training import trackers
from laser_core.training.adversarial import Adversary, prepare_adversary
from laser_core.training.divergence import DivergenceWatch
from laser_core.training.evaluate import evaluate
from laser_core.training.initialize import freeze, initialize_from
from laser_core.training.interrupt import AgreedStop, DeferredInterrupt
from laser_core.training.throughput import Throughput

log = logging.getLogger(__name__)


class TrainingDiverged(LaserError):
    """The loss became NaN or infinite; the message names the first bad step and the newest
    intact checkpoint (one written before that step: every checkpoint is checked first)."""


@dataclass
class TrainResult:
    """The run directory, validation metrics before and after, and the trained model."""

    run_dir: Path
    model: Autoencoder
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)


def train(recipe: Recipe, run_dir: Path, resume: bool = False) -> TrainResult:
    """Train ``recipe`` into ``run_dir``; with ``resume``, continue its newest intact
    checkpoint (rundir/resume.py says which recipe changes a resume accepts)."""
    config = recipe.train
    if resume:
        changes = resuming.check_resume(run_dir, recipe)
    else:
        resuming.check_new(run_dir)
    if config.deterministic:
        _deterministic()
    accelerator = Accelerator(
        cpu=_accelerator_device().type == "cpu",  # so torchrun on CPUs runs multi-process over gloo
        mixed_precision=config.precision,
        # the loop chains epochs itself: syncing at each epoch's end would add optimizer steps
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=config.grad_accum, sync_with_dataloader=False
        ),
        step_scheduler_with_optimizer=False,  # we step it once per optimizer step ourselves
        dataloader_config=DataLoaderConfiguration(
            use_seedable_sampler=True,
            data_seed=recipe.seed,
            # copies from pinned memory overlap with the step
            non_blocking=recipe.data.config.pins_memory(_accelerator_device()),
        ),
        # Buffers updated outside autograd (codebooks, EMA and dictionary statistics) are
        # all-reduced by the bottlenecks; rank 0's copy broadcast on every forward would only
        # cost bandwidth and hide a missing all-reduce.
        kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)],
        **trackers.accelerator_kwargs(config.trackers, run_dir),
    )
    set_seed(recipe.seed)  # before building, so every process starts from the same weights
    splits = build_data(recipe)
    model, context = build_model(recipe, splits)
    build_task(recipe, context)  # a task that cannot work on this run fails before training
    if config.init_from is not None and not resume:
        accelerator.print(initialize_from(model, recipe))
    freeze(model, config.freeze)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    if config.compile:  # in place: parameter names stay those of the eager model
        model.encoder.compile()
        model.decoder.compile()
    metrics = build_metrics(recipe, context)
    image_losses = build_losses(recipe, context)
    discriminator = build_discriminator(recipe, context)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, config), betas=config.betas, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(config))
    loading = _loader_options(recipe, accelerator)
    # Each loader draws on its own generator: an iterator started on resume, mid-epoch, must
    # not draw on torch's global RNG, which the bottleneck's sampling (Gumbel noise, dead-code
    # revival) follows; the shuffle itself is Accelerate's seedable sampler's (data_seed).
    train_loader = DataLoader(
        splits.train,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(recipe.seed),
        **loading,
    )
    val_loader = DataLoader(
        splits.val, generator=torch.Generator().manual_seed(recipe.seed), **loading
    )
    model, optimizer, train_loader, val_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, val_loader, scheduler
    )
    image_losses.to(accelerator.device)
    adversary = None
    if discriminator is not None:
        decoder = accelerator.unwrap_model(model).decoder
        adversary = prepare_adversary(recipe, discriminator, accelerator, decoder)
    if len(train_loader) == 0:
        raise LaserError(
            f"{recipe.source}: the training split has {len(splits.train)} examples, fewer than "
            f"one batch of {recipe.data.config.batch_size} per process"
        )

    if resume:
        state = checkpoint.load(accelerator, run_dir)
        if state.step > config.steps:
            raise LaserError(
                f"train.steps={config.steps} is below step {state.step}, where {run_dir} was "
                f"checkpointed; resume with train.steps={state.step} or more"
            )
        _restore_hyperparameters(optimizer, scheduler, config)
        if accelerator.is_main_process:
            resuming.record(run_dir, recipe, state.step, changes, splits)
            rundir.MetricsLog(run_dir).truncate_after(state.step)
    else:
        state = checkpoint.TrainerState()
        if accelerator.is_main_process:
            resuming.start_over(run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            files = rundir.RunDir(run_dir)
            files.write_recipe(recipe)
            files.write_plugin_versions(recipe, default_registry(), accelerator)
            resuming.start_record(run_dir, splits, _coding(accelerator.unwrap_model(model)))
            manifest.seal(run_dir, [files.RECIPE, files.PLUGINS, files.RUN_INFO])
    accelerator.wait_for_everyone()
    trackers.start(accelerator, recipe, run_dir)

    loop = _Loop(
        recipe,
        accelerator,
        model,
        optimizer,
        scheduler,
        val_loader,
        metrics,
        run_dir,
        image_losses,
        adversary,
    )
    result = TrainResult(run_dir, accelerator.unwrap_model(model))
    if not resume:
        result.before = loop.validate(state.step)
    try:
        loop.run(state, _micro_batches(train_loader, state.batches_seen, accelerator))
    except _StopRequested:
        loop.stop_if_diverged(state.step)
        path = checkpoint.save(accelerator, run_dir, state, config.keep_checkpoints)
        raise LaserError(
            f"interrupted at step {state.step}; saved {path}; resume with "
            f"`laser run --resume {run_dir}`"
        ) from None
    # the last step validated (see _step); a resumed finished run logged it before
    result.after = loop.latest_val or rundir.MetricsLog(run_dir).val_at(state.step)
    if accelerator.is_main_process:
        rundir.RunDir(run_dir).write_final_metrics({"step": state.step, **result.after})
    if checkpoint.latest(run_dir) != checkpoint.path_for(run_dir, state.step):
        checkpoint.save(accelerator, run_dir, state, config.keep_checkpoints)
    save_weights(accelerator, model, run_dir)
    if accelerator.is_main_process:
        final = [rundir.RunDir.METRICS, rundir.RunDir.WEIGHTS]
        bottleneck = accelerator.unwrap_model(model).bottleneck
        if isinstance(bottleneck, EntropyCodedBottleneck):
            rundir.RunDir(run_dir).write_coding_tables(bottleneck.coding_tables())
            final.append(rundir.RunDir.CODING_TABLES)
        manifest.seal(run_dir, final)  # last: the run is finished and verifiable
    accelerator.end_training()
    return result


class _StopRequested(Exception):
    """Ctrl-C arrived; raised between optimizer steps, so the state is whole."""


class _Loop:
    """The per-step work, kept apart from the setup above."""

    def __init__(
        self,
        recipe: Recipe,
        accelerator: Accelerator,
        model: Any,
        optimizer: Any,
        scheduler: Any,
        val_loader: Any,
        metrics: dict[str, Any],
        run_dir: Path,
        image_losses: ImageLosses,
        adversary: Adversary | None,
    ):
        self.recipe, self.config = recipe, recipe.train
        self.accelerator, self.model = accelerator, model
        self.optimizer, self.scheduler = optimizer, scheduler
        self.val_loader, self.metrics = val_loader, metrics
        self.run_dir = run_dir
        self.metrics_log = trackers.TrackedLog(rundir.MetricsLog(run_dir), accelerator, run_dir)
        self.image_losses, self.adversary = image_losses, adversary
        self.rate_weight = recipe.losses.rate
        self.trained = [model] if adversary is None else [model, adversary.discriminator]
        self.latest_val: dict[str, float] = {}
        self.latest_val_step = 0
        self.latest_loss: float | None = None
        self.divergence = DivergenceWatch(accelerator.device)
        self.throughput = Throughput(
            recipe.data.config.batch_size * recipe.train.grad_accum * accelerator.num_processes
        )

    def run(self, state: checkpoint.TrainerState, batches: Iterator[dict[str, Any]]) -> None:
        config, accelerator = self.config, self.accelerator
        bottleneck = accelerator.unwrap_model(self.model).bottleneck
        progress = tqdm(
            total=config.steps,
            initial=state.step,
            desc="train",
            disable=not accelerator.is_main_process,
            dynamic_ncols=True,
        )
        progress.set_postfix(self._postfix())
        self.model.train()
        with progress, DeferredInterrupt() as interrupt:  # a failure's message starts a line
            stop = AgreedStop(interrupt, accelerator.num_processes)
            try:
                while state.step < config.steps:
                    self._step(state, batches, bottleneck, progress)
                    if stop.requested():
                        stop.close()  # every process issued the last round: waiting for it returns
                        raise _StopRequested
            except (TrainingDiverged, _StopRequested):
                raise
            except Exception:
                # NaN weights can break a bottleneck's solver before the next check: say so
                self.stop_if_diverged(state.step, across_processes=False)
                raise
            stop.close()

    def _step(
        self,
        state: checkpoint.TrainerState,
        batches: Iterator[dict[str, Any]],
        bottleneck: Any,
        progress: tqdm,
    ) -> None:
        """One optimizer step over ``grad_accum`` micro-batches, then logs, validation and
        checkpoints that fall due."""
        config, accelerator = self.config, self.accelerator
        sums: dict[str, torch.Tensor] = {}
        for _ in range(config.grad_accum):
            batch = next(batches)
            for key, value in self._micro_step(batch["image"], state).items():
                sums[key] = sums.get(key, 0) + value.detach().float() / config.grad_accum
        state.step += 1
        state.batches_seen += config.grad_accum
        self.scheduler.step()
        _reset_optimizer_rows(self.optimizer, bottleneck.after_optimizer_step())
        progress.update(1)
        # Only these steps read the device; the others queue work without waiting for it.
        # The last step validates and checkpoints here, so a resume from that checkpoint
        # finds all of the step's records logged, and logs none of them twice.
        last = state.step == config.steps
        log_due = last or state.step % config.log_every == 0
        val_due = last or bool(config.eval_every and state.step % config.eval_every == 0)
        save_due = last or bool(
            config.checkpoint_every and state.step % config.checkpoint_every == 0
        )
        if log_due or val_due or save_due:
            self.stop_if_diverged(state.step)
        if log_due:
            self.latest_loss = self._log_train(state.step, sums)["loss"]
        if val_due:
            self.validate(state.step)
        if log_due or val_due:
            progress.set_postfix(self._postfix())
        if save_due:
            checkpoint.save(accelerator, self.run_dir, state, config.keep_checkpoints)

    def _micro_step(
        self, images: torch.Tensor, state: checkpoint.TrainerState
    ) -> dict[str, torch.Tensor]:
        """The generator's step, then the discriminator's; what to log, by name."""
        accelerator, adversary = self.accelerator, self.adversary
        if self.config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with accelerator.accumulate(*self.trained):
            reconstructions, output = self.model(images)
            losses = self.image_losses(reconstructions, images)
            logs = {}
            if adversary is not None:
                losses["adversarial"], logs["adversarial_weight"] = adversary.generator_term(
                    reconstructions, sum(losses.values()), state.step
                )
            losses["bottleneck"] = output.loss.float()
            if output.bits is not None:
                bpp = output.bits.float().sum() / (images.shape[0] * images[0, 0].numel())
                logs["bpp"] = bpp.detach()
                if self.rate_weight:
                    losses["rate"] = self.rate_weight * bpp
            loss = sum(losses.values())
            self.divergence.observe(loss, state.step + 1)
            if loss.requires_grad:  # else nothing learns by gradient, see parameter_groups
                accelerator.backward(loss)
            if accelerator.sync_gradients and self.config.grad_clip:
                accelerator.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if adversary is not None:
                logs |= adversary.discriminator_step(images, reconstructions, state.step)
        stats = {f"stats/{k}": v for k, v in output.stats.items()}
        return {"loss": loss, **losses, **logs, **stats}

    def stop_if_diverged(self, step: int, across_processes: bool = True) -> None:
        """Raise TrainingDiverged, naming the first bad step, if any loss up to ``step`` was
        NaN or infinite; a sync, so only at log, validation and checkpoint steps."""
        found = self.divergence.first_bad(self.accelerator if across_processes else None)
        if found is None:
            return
        first, loss = found
        stopped = "training stopped"
        if first != step:
            stopped += f" at step {step} (the loss is read at log, validation and checkpoint steps)"
        last = checkpoint.latest_intact(self.run_dir)
        raise TrainingDiverged(
            f"loss is {loss} at step {first}; {stopped}. Last good checkpoint: "
            f"{last or 'none (no checkpoint was written yet)'}. Lower train.lr, enable "
            "train.grad_clip, or check the data."
        )

    def _log_train(self, step: int, sums: dict[str, torch.Tensor]) -> dict[str, Any]:
        reduced = {k: self.accelerator.reduce(v, reduction="mean").item() for k, v in sums.items()}
        record = {"step": step, "split": "train", **reduced, "lr": self.scheduler.get_last_lr()[0]}
        record |= self.throughput.since_last_log(step, self.accelerator.device)
        if self.accelerator.is_main_process:
            self.metrics_log.append(record)
        return record

    def validate(self, step: int) -> dict[str, float]:
        grid = rundir.RunDir(self.run_dir).grid(step)
        results = evaluate(
            self.model,
            self.val_loader,
            self.metrics,
            self.accelerator,
            self.config.eval_batches,
            grid,
        )
        if self.accelerator.is_main_process:
            self.metrics_log.append({"step": step, "split": "val", **results})
        self.latest_val, self.latest_val_step = results, step
        return results

    def _postfix(self) -> dict[str, str]:
        """The latest loss, and the latest validation's first two metrics named with the step
        they were measured at (``psnr@100``), so that old numbers do not pass for new ones."""
        shown = {} if self.latest_loss is None else {"loss": f"{self.latest_loss:.4g}"}
        metrics = [(k, v) for k, v in self.latest_val.items() if k != "val_examples"][:2]
        return shown | {f"{k}@{self.latest_val_step}": f"{v:.3g}" for k, v in metrics}


def parameter_groups(model: Autoencoder, config: TrainConfig) -> list[dict[str, Any]]:
    """One AdamW group per component, so a codebook or dictionary can have its own lr.

    A model may have nothing to train by gradient (identity encoder and decoder around an EMA
    codebook or an online dictionary): it then gets one empty group, so that the optimizer,
    scheduler and checkpoints work unchanged while the bottleneck learns in its forward pass.
    """
    groups = []
    for part in ("encoder", "bottleneck", "decoder"):
        params = [p for p in getattr(model, part).parameters() if p.requires_grad]
        if params:
            groups.append(
                {"params": params, "lr": config.lr_per_component.get(part, config.lr), "name": part}
            )
    return groups or [{"params": [], "lr": config.lr, "name": "none"}]


def _restore_hyperparameters(optimizer: Any, scheduler: Any, config: TrainConfig) -> None:
    """Loading a checkpoint brought back the optimizer's lr, betas and weight decay as they
    were saved: put the recipe's in their place, so that a resume's overrides of them (and of
    the schedule's steps) take effect; unchanged values give the same numbers."""
    inner = scheduler.scheduler
    for group in optimizer.param_groups:
        lr = config.lr_per_component.get(group["name"], config.lr)
        group.update(betas=config.betas, weight_decay=config.weight_decay, initial_lr=lr)
    inner.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    groups = zip(optimizer.param_groups, inner.base_lrs, inner.lr_lambdas, strict=True)
    for group, base, factor in groups:
        group["lr"] = base * factor(inner.last_epoch)


def warmup_cosine(config: TrainConfig):
    """Linear warmup to 1, then cosine decay to ``min_lr_ratio`` at ``steps``."""

    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        span = max(1, config.steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine

    return factor


def _loader_options(recipe: Recipe, accelerator: Accelerator) -> dict[str, Any]:
    """DataLoader keywords from the recipe's data block, with the device's defaults."""
    data = recipe.data.config
    workers = data.loader_workers(accelerator.device, accelerator.num_processes)
    return {
        "batch_size": data.batch_size,
        "num_workers": workers,
        "pin_memory": data.pins_memory(accelerator.device),
        "persistent_workers": data.persistent_workers,
    }


def _accelerator_device() -> torch.device:
    """The device this process will train on, before Accelerate is set up."""
    if hasattr(torch, "accelerator"):  # torch >= 2.6
        accelerator = torch.accelerator.current_accelerator(check_available=True)
        return accelerator if accelerator is not None else torch.device("cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _micro_batches(
    loader: Any, batches_seen: int, accelerator: Accelerator
) -> Iterator[dict[str, Any]]:
    """Endless batches in the order an uninterrupted run would see them: epoch e shuffles
    with seed + e, and a resumed run skips what the checkpointed run had consumed."""
    epoch, skip = divmod(batches_seen, len(loader))
    while True:
        loader.set_epoch(epoch)
        yield from accelerator.skip_first_batches(loader, skip) if skip else loader
        epoch, skip = epoch + 1, 0


def _reset_optimizer_rows(
    optimizer: torch.optim.Optimizer, rows: list[tuple[torch.nn.Parameter, torch.Tensor]]
) -> None:
    """Forget Adam's moments for re-initialised codebook rows or atoms, given as row indices or
    as a boolean mask over rows (masked_fill: no host sync)."""
    for parameter, index in rows:
        for moment in optimizer.state.get(parameter, {}).values():
            if torch.is_tensor(moment) and moment.shape == parameter.shape:
                if index.dtype == torch.bool:
                    moment.masked_fill_(index.view(-1, *[1] * (moment.ndim - 1)), 0)
                else:
                    moment[index] = 0


def _deterministic() -> None:
    """train.deterministic: deterministic kernels everywhere (an error names any op that has
    none), a fixed cuBLAS workspace, and no cuDNN autotuning; set for the whole process."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


def _coding(model: Autoencoder) -> str:
    """How ``laser compress`` will code this model's images, for run.json."""
    whole = isinstance(model.bottleneck, EntropyCodedBottleneck)
    return resuming.WHOLE_IMAGES if whole else resuming.TILES


def save_weights(accelerator: Accelerator, model: torch.nn.Module, run_dir: Path) -> None:
    """The final weights as model.safetensors, written atomically by the main process."""
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        rundir.RunDir(run_dir).write_weights(state)
