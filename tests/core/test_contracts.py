"""Broken components are caught when they are built, at `laser validate`, with one message
that names the kind, the component, its plugin and the rule; the conformance kit applies the
same rules. Checks that need the assembled components (downsampling against the image size,
sparsity against the latent size, discriminator depth against the image) fail there too,
located at the block's line."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from laser_core import (
    Bottleneck,
    BottleneckOutput,
    Codes,
    CodeSpec,
    ComponentConfig,
    ComponentError,
    hookimpl,
)
from laser_core.assembly.build import build_data, build_model
from laser_core.assembly.probe import probing
from laser_core.cli.main import main
from laser_core.errors import ContractError
from laser_core.plugin import registry as registry_module
from laser_core.plugin.registry import Provider, Registry
from laser_core.recipes.model import load_recipe
from laser_core.testing import check_component
from tests.helpers import TINY_RECIPE

EVIL = Provider("evil", "laser-evil", "1.0")


class SignConfig(ComponentConfig):
    breakage: str = "none"


class SignBottleneck(Bottleneck):
    """One bit per position (the sign of channel 0); ``breakage`` breaks one rule."""

    def __init__(self, dim: int, breakage: str):
        super().__init__()
        self.dim, self.breakage = dim, breakage

    def encode(self, z: torch.Tensor) -> Codes:
        indices = (z[:, 0] > 0).long()
        if self.breakage == "int32 codes":
            return Codes(indices[..., None].int())
        if self.breakage == "codes without depth":
            return Codes(indices)
        return Codes(indices[..., None])

    def decode(self, codes: Codes) -> torch.Tensor:
        return codes.indices.float().permute(0, 3, 1, 2).expand(-1, self.dim, -1, -1) * 2 - 1

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        codes = self.encode(z)
        quantized = z + (self.decode(codes) - z).detach() if codes.indices.ndim == 4 else z
        if self.breakage == "tensor from forward":
            return quantized
        if self.breakage == "half quantized":
            quantized = quantized.half()
        return BottleneckOutput(quantized, z.new_zeros(()), codes)

    def code_spec(self) -> CodeSpec:
        return CodeSpec([2])


class MAEConfig(ComponentConfig):
    scale: float = 1.0


def build_sign(config: SignConfig, context):
    if config.breakage == "identity":
        return nn.Identity()
    if config.breakage == "value error":
        raise ValueError(f"latent_dim {context.latent_dim} is too small")
    if config.breakage == "component error":
        raise ComponentError(f"needs latent_dim >= 64, got {context.latent_dim}; raise it")
    return SignBottleneck(context.latent_dim, config.breakage)


class EvilPlugin:
    @hookimpl
    def laser_register_bottlenecks(self, register):
        register("sign", build_sign, config=SignConfig)

    @hookimpl
    def laser_register_metrics(self, register):
        register("mae", lambda config, context: config, config=MAEConfig)  # returns its config

    @hookimpl
    def laser_register_tasks(self, register):
        register("tally", lambda config, context: {"run": None})  # not a Task


@pytest.fixture
def registry(monkeypatch):
    """The installed plugins plus the evil one, as `laser` sees them."""
    registry = Registry()
    registry.load_entry_points(disabled=set())
    registry.add_plugin(EvilPlugin(), EVIL)
    monkeypatch.setattr(registry_module, "_default", registry)
    monkeypatch.delenv("LASER_DEBUG", raising=False)
    return registry


def validate(write_recipe, capsys, text: str) -> tuple[int, str, str]:
    """`laser validate` on ``text``: exit code, stderr, the recipe's path; stdout stays."""
    path = write_recipe(text)
    code = main(["validate", str(path)])
    captured = capsys.readouterr()
    print(captured.out, end="")
    return code, captured.err, str(path)


BROKEN = {
    "identity": "the factory returned Identity, not a laser_core.Bottleneck",
    "tensor from forward": "forward() returned Tensor, not a laser_core.BottleneckOutput",
    "half quantized": "quantized (2, 4, 8, 8) torch.float16 is not (batch, output_dim, height",
    "int32 codes": "indices are torch.long; got torch.int32",
    "codes without depth": "indices (2, 8, 8) are not (batch, height, width, depth=1)",
}


@pytest.mark.parametrize("breakage", BROKEN)
def test_a_broken_bottleneck_is_one_message_naming_kind_component_plugin_and_rule(
    registry, write_recipe, capsys, breakage
):
    recipe = TINY_RECIPE.replace(
        "{name: vq, codebook_size: 16}", f"{{name: sign, breakage: {breakage}}}"
    )
    code, err, path = validate(write_recipe, capsys, recipe)
    assert code == 1 and "Traceback" not in err
    assert err.startswith(f"error: {path}:4: bottleneck 'sign' from plugin evil (laser-evil 1.0)")
    assert "breaks its contract" in err and BROKEN[breakage] in err, err


def test_a_metric_factory_returning_its_config_is_named(registry, write_recipe, capsys):
    code, err, path = validate(
        write_recipe, capsys, TINY_RECIPE.replace("[mse, psnr]", "[mse, mae]")
    )
    assert code == 1
    assert f"{path}:6: metric 'mae' from plugin evil (laser-evil 1.0) breaks its contract" in err
    assert "the factory returned MAEConfig, which has no per_example() method" in err


def test_a_broken_task_fails_laser_run_before_training(registry, write_recipe, capsys, tmp_path):
    path = write_recipe(TINY_RECIPE + "task: {name: tally}\n")
    assert main(["run", str(path), "--run-dir", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert f"{path}:8: task 'tally' from plugin evil (laser-evil 1.0) breaks its contract" in err
    assert "the factory returned dict, which has no run(run_dir) method" in err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_any_exception_from_a_factory_names_the_plugin_and_its_line(registry, write_recipe, capsys):
    recipe = TINY_RECIPE.replace(
        "{name: vq, codebook_size: 16}", "{name: sign, breakage: value error}"
    )
    code, err, path = validate(write_recipe, capsys, recipe)
    assert code == 1 and "Traceback" not in err
    assert f"{path}:4: bottleneck 'sign' from plugin evil (laser-evil 1.0) failed" in err
    assert "ValueError: latent_dim 4 is too small (at " in err and f"{__file__}:" in err


def test_a_component_error_is_a_located_recipe_error(registry, write_recipe, capsys):
    recipe = TINY_RECIPE.replace(
        "{name: vq, codebook_size: 16}", "{name: sign, breakage: component error}"
    )
    code, err, path = validate(write_recipe, capsys, recipe)
    assert code == 2
    assert (
        f"{path}:4: bottleneck: 'sign' from plugin evil (laser-evil 1.0): needs latent_dim" in err
    )


def test_a_working_third_party_bottleneck_validates(registry, write_recipe, capsys):
    recipe = TINY_RECIPE.replace("{name: vq, codebook_size: 16}", "{name: sign}")
    code, err, _ = validate(write_recipe, capsys, recipe)
    assert code == 0, err
    assert "name: evil:sign" in capsys.readouterr().out  # what a run directory would record


ASSEMBLY = {
    "downsamplings 12 on 16-pixel images": (
        ("downsamplings: 1", "downsamplings: 12"),
        3,
        "encoder 'conv' downsamples by 4096, which does not divide the dataset's image size 16",
    ),
    "sparsity above the latent size": (
        ("{name: vq, codebook_size: 16}", "{name: omp, atoms: 16, sparsity: 5}"),
        4,
        "'omp' from plugin omp (laser 0.1.0): bottleneck: sparsity=5 exceeds",
    ),
    "a 50-layer discriminator on 16-pixel images": (
        ("metrics:", "discriminator: {name: patchgan, layers: 50}\nmetrics:"),
        6,
        "'patchgan' from plugin discriminators (laser 0.1.0): discriminator 'patchgan' with 50 "
        "layers needs images of at least",
    ),
}


@pytest.mark.parametrize("case", ASSEMBLY)
def test_assembly_problems_fail_validate_at_the_block_line(write_recipe, capsys, case):
    (old, new), line, message = ASSEMBLY[case]
    code, err, path = validate(write_recipe, capsys, TINY_RECIPE.replace(old, new))
    assert code == 2 and "Traceback" not in err
    assert f"{path}:{line}: " in err and message in err, err


@pytest.mark.parametrize("breakage", BROKEN)
def test_the_kit_applies_the_same_rules(registry, breakage):
    with pytest.raises(ContractError) as caught:
        check_component("bottlenecks", "sign", {"breakage": breakage}, registry=registry)
    assert isinstance(caught.value, AssertionError)  # reads as a failed check in pytest
    assert BROKEN[breakage].split(" (")[0] in str(caught.value)
    assert check_component("bottlenecks", "sign", {}, registry=registry).code_spec() == CodeSpec(
        [2]
    )


def test_the_kit_checks_metrics_and_tasks(registry):
    with pytest.raises(ContractError, match="has no per_example"):
        check_component("metrics", "mae", registry=registry)
    check_component("metrics", "psnr", registry=registry)
    check_component("tasks", "classify", registry=registry)


def test_the_probe_changes_neither_the_model_nor_the_random_streams(write_recipe):
    recipe = load_recipe(write_recipe(TINY_RECIPE.replace("16}", "16, kmeans_init: true}")))
    model, _ = build_model(recipe, build_data(recipe))  # probes encoder, bottleneck, decoder
    # in training mode the first batch would have placed the codes by k-means
    assert model.training and not bool(model.bottleneck.codebook.initialized)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    model.encoder.net[0].eval()  # a part its plugin keeps frozen
    with probing(model):
        assert not model.training
        torch.rand(3), np.random.rand(3), random.random()
    assert model.training and model.decoder.training and not model.encoder.net[0].training
    assert torch.equal(torch.get_rng_state(), states[0])
    assert (np.random.get_state()[1] == states[1]).all() and random.getstate() == states[2]
