"""The loop as a GPU needs it, checked on a CPU: steps that neither log, validate nor checkpoint
never make the host wait for the device; Ctrl-C is agreed by all processes without a device
round trip; torch.compile, channels-last and bf16 autocast train, with codebook and dictionary
math in fp32; the data block's loader options reach the DataLoaders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from torch.optim.optimizer import _get_value
from torch.overrides import TorchFunctionMode

from laser_core.errors import RecipeError
from laser_core.recipes.model import load_recipe
from laser_core.training import train as training
from laser_core.training.interrupt import AgreedStop, DeferredInterrupt
from tests.core.test_train import train_losses
from tests.helpers import TINY_RECIPE
from tests.sync_counter import TRAINING_LOOP_IGNORE, SyncCounter

pytestmark = pytest.mark.slow

OMP = "{name: omp, atoms: 16, sparsity: 2, update: gradient}"


def test_the_counter_files_syncs_by_step_and_skips_ignored_code_and_host_reads(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rv'}", rank=0, world_size=1)
    try:
        x, step_count = torch.randn(8), torch.tensor(3.0)
        with SyncCounter() as syncs:
            syncs.mark(1)
            y = (x * 2).clamp(min=0)[torch.arange(3)]
            dist.all_reduce(y, async_op=True).wait()
            _get_value(step_count)  # the optimizer's step count: a host tensor on any device
            syncs.mark(2)
            y.sum().item()
            dist.all_reduce(y)
        with SyncCounter(ignore=(Path(__file__).name,)) as ignoring:
            y.sum().item()
    finally:
        dist.destroy_process_group()
    assert syncs.count(1) == 0
    assert [(sync.name, sync.label) for sync in syncs.sites] == [
        ("item/bool/int/float of a tensor", 2),
        ("dist.all_reduce", 2),
    ]
    assert all(sync.site.startswith(__file__) for sync in syncs.sites)
    assert ignoring.total == 0


@pytest.mark.parametrize("accumulate", ["train.grad_accum=1", "train.grad_accum=2"])
def test_steps_that_do_not_log_validate_or_checkpoint_never_wait_for_the_device(
    write_recipe, tmp_path, monkeypatch, accumulate
):
    # checked steps: 3 and 6 log, 5 checkpoints, 7 (the last) does all three
    overrides = ["train.steps=7", "train.log_every=3", "train.checkpoint_every=5", accumulate]
    recipe = load_recipe(write_recipe(TINY_RECIPE), overrides)
    real_step = training._Loop._step
    with SyncCounter(ignore=TRAINING_LOOP_IGNORE) as syncs:

        def marked_step(self, state, *args):
            syncs.mark(state.step + 1)  # the step's syncs, and the interrupt check after it
            return real_step(self, state, *args)

        monkeypatch.setattr(training._Loop, "_step", marked_step)
        training.train(recipe, tmp_path / "run")
    unchecked = [sync for sync in syncs.sites if sync.label in (1, 2, 4)]
    assert unchecked == [], syncs.report()
    # the counter sees the loop's own reads where they are allowed
    assert syncs.count(3) > 0 and syncs.count(5) > 0
    assert any("laser_core/training/divergence.py" in sync.site for sync in syncs.sites)


def _agree_on_a_stop(rank: int, rendezvous: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    interrupt = DeferredInterrupt()
    stop = AgreedStop(interrupt, num_processes=2)
    stopped_after = None
    for step in range(1, 11):
        if rank == 1 and step == 3:
            interrupt.requested = True  # Ctrl-C reached only rank 1, during step 3
        if stop.requested():
            stopped_after = step
            break
    stop.close()
    dist.destroy_process_group()
    Path(out, f"rank{rank}.json").write_text(json.dumps(stopped_after))


def test_a_ctrl_c_seen_by_one_process_stops_every_process_after_the_same_step(tmp_path):
    mp.spawn(_agree_on_a_stop, args=(str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=2)
    stopped = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert stopped == [4, 4]  # the step after the one that saw it


def test_one_process_stops_after_the_step_that_saw_ctrl_c():
    interrupt = DeferredInterrupt()
    stop = AgreedStop(interrupt, num_processes=1)
    assert not stop.requested()
    interrupt.requested = True
    assert stop.requested()


def test_compiled_encoder_and_decoder_train_like_the_eager_ones(write_recipe, tmp_path):
    path = write_recipe(TINY_RECIPE)
    steps = ["train.steps=2", "train.eval_batches=1"]
    eager = training.train(load_recipe(path, steps), tmp_path / "eager")
    compiled = training.train(load_recipe(path, [*steps, "train.compile=true"]), tmp_path / "c")
    for part in (compiled.model.encoder, compiled.model.decoder):
        assert part._compiled_call_impl is not None
    assert compiled.model.state_dict().keys() == eager.model.state_dict().keys()
    expected, got = train_losses(eager.run_dir), train_losses(compiled.run_dir)
    assert got == pytest.approx(expected, rel=1e-4)


def test_channels_last_trains_like_contiguous_memory(write_recipe, tmp_path, monkeypatch):
    path = write_recipe(TINY_RECIPE)
    steps = ["train.steps=2", "train.eval_batches=1"]
    layouts = []
    real_build = training.build_model

    def build_and_watch(recipe, splits):
        model, context = real_build(recipe, splits)
        channels_last = torch.channels_last

        def note_layout(module, inputs):
            if module.training:
                layouts.append(inputs[0].is_contiguous(memory_format=channels_last))

        model.encoder.register_forward_pre_hook(note_layout)
        return model, context

    monkeypatch.setattr(training, "build_model", build_and_watch)
    plain = training.train(load_recipe(path, steps), tmp_path / "plain")
    assert layouts == [False, False]
    layouts.clear()
    nhwc = training.train(load_recipe(path, [*steps, "train.channels_last=true"]), tmp_path / "n")
    assert layouts == [True, True]
    kernels = [p for p in nhwc.model.parameters() if p.ndim == 4]
    assert kernels and all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    expected, got = train_losses(plain.run_dir), train_losses(nhwc.run_dir)
    assert got == pytest.approx(expected, rel=1e-4)


class _Dtypes(TorchFunctionMode):
    """The dtype of every floating tensor each torch function returns, by function name."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, torch.dtype]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        outputs = result if isinstance(result, tuple | list) else (result,)
        for output in outputs:
            if torch.is_tensor(output) and output.is_floating_point():
                self.seen.append((getattr(func, "__name__", str(func)), output.dtype))
        return result


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate keeps one precision per process: let this test's run choose its own."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.mark.parametrize("bottleneck", ["{name: vq, codebook_size: 16}", OMP], ids=["vq", "omp"])
def test_bf16_autocast_keeps_codebook_and_dictionary_math_in_fp32(
    write_recipe, tmp_path, monkeypatch, bottleneck, fresh_accelerate_state
):
    text = TINY_RECIPE.replace("{name: vq, codebook_size: 16}", bottleneck)
    recipe = load_recipe(write_recipe(text), ["train.steps=2", "train.precision=bf16"])
    inputs, inside = [], _Dtypes()
    real_build = training.build_model

    def build_and_watch(recipe, splits):
        model, context = real_build(recipe, splits)

        def enter(module, args):
            if module.training:
                inputs.append(args[0].dtype)
                inside.__enter__()

        def leave(module, args, output):
            if module.training:
                inside.__exit__(None, None, None)

        model.bottleneck.register_forward_pre_hook(enter)
        model.bottleneck.register_forward_hook(leave)
        return model, context

    monkeypatch.setattr(training, "build_model", build_and_watch)
    result = training.train(recipe, tmp_path / "run")
    assert inputs == [torch.bfloat16, torch.bfloat16]  # autocast ran the encoder in bf16
    products = [dtype for name, dtype in inside.seen if _is_product(name)]
    assert products and set(products) == {torch.float32}, inside.seen
    bottleneck_state = result.model.bottleneck.state_dict().values()
    assert {t.dtype for t in bottleneck_state if t.is_floating_point()} == {torch.float32}


def _is_product(name: str) -> bool:
    """Distances, Gram matrices, correlations and solves."""
    keys = ("mm", "matmul", "cdist", "einsum", "solve", "cholesky", "linear")
    return any(key in name for key in keys)


def test_the_data_block_sets_the_loaders_workers_pinning_and_persistence(write_recipe):
    text = TINY_RECIPE.replace("batch_size: 8}", "batch_size: 8, num_workers: 2}")
    recipe = load_recipe(
        write_recipe(text), ["data.pin_memory=true", "data.persistent_workers=true"]
    )
    options = training._loader_options(recipe, Accelerator(cpu=True))
    # a CPU has nothing to pin for
    assert options == {
        "batch_size": 8,
        "num_workers": 2,
        "pin_memory": False,
        "persistent_workers": True,
    }


def test_loaders_default_to_what_suits_the_device(write_recipe):
    data = load_recipe(write_recipe(TINY_RECIPE)).data.config
    assert (data.loader_workers(torch.device("cpu")), data.pins_memory(torch.device("cpu"))) == (
        0,
        False,
    )
    cuda = torch.device("cuda")
    cores = len(os.sched_getaffinity(0))
    assert data.pins_memory(cuda)
    assert data.loader_workers(cuda) == min(8, cores)
    assert data.loader_workers(cuda, processes=cores) == 1
    chosen = data.model_copy(update={"num_workers": 3, "pin_memory": False})
    assert (chosen.loader_workers(cuda), chosen.pins_memory(cuda)) == (3, False)


def test_persistent_workers_without_workers_is_refused(write_recipe):
    with pytest.raises(RecipeError, match="persistent_workers needs loader processes"):
        load_recipe(write_recipe(TINY_RECIPE), ["data.persistent_workers=true"])
