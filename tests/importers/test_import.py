"""Imported autoencoders reconstruct exactly as their source library does: small randomly
initialised models built and saved by diffusers and taming-transformers themselves, imported
with `laser import`, reopened with load_run and compared with the library's own forward pass."""

from __future__ import annotations

import json
import re

import pytest
import torch
import yaml

from laser_core import LaserError, dataset_overrides, load_run
from laser_core.campaigns.status import is_finished
from laser_core.cli import main
from laser_core.downstream.export.store import open_export

diffusers = pytest.importorskip("diffusers")
taming_model = pytest.importorskip("taming.modules.diffusionmodules.model")
taming_quantize = pytest.importorskip("taming.modules.vqvae.quantize")

SIZE = 32
WIDTHS = (32, 64)


def _images() -> torch.Tensor:
    return torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _diffusers_kwargs(attention: bool) -> dict:
    down = ("DownEncoderBlock2D", "AttnDownEncoderBlock2D" if attention else "DownEncoderBlock2D")
    up = ("AttnUpDecoderBlock2D" if attention else "UpDecoderBlock2D", "UpDecoderBlock2D")
    return dict(
        block_out_channels=WIDTHS,
        down_block_types=down,
        up_block_types=up,
        layers_per_block=1,
        latent_channels=4,
        sample_size=SIZE,
    )


def _reconstruct(run_dir) -> torch.Tensor:
    run = load_run(run_dir)
    with torch.no_grad():
        return run.model(_images())[0]


@pytest.mark.parametrize("attention", [False, True])
def test_diffusers_vqmodel_reconstructs_as_diffusers_does(tmp_path, attention):
    torch.manual_seed(0)
    source = diffusers.VQModel(**_diffusers_kwargs(attention), num_vq_embeddings=64).eval()
    source.save_pretrained(tmp_path / "vq")
    assert main(["import", "diffusers", str(tmp_path / "vq"), "--out", str(tmp_path / "run")]) == 0
    with torch.no_grad():
        expected = source(_images()).sample
    assert (_reconstruct(tmp_path / "run") - expected).abs().max() < 1e-4
    recipe = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    assert recipe["bottleneck"]["codebook_size"] == 64
    assert "imported from diffusers" in (tmp_path / "run" / "recipe.yaml").read_text()
    assert is_finished(tmp_path / "run")  # `laser compare` lists it as done


def test_diffusers_autoencoder_kl_maps_its_posterior_onto_gaussian(tmp_path):
    torch.manual_seed(0)
    source = diffusers.AutoencoderKL(**_diffusers_kwargs(True), scaling_factor=0.5).eval()
    source.save_pretrained(tmp_path / "kl")
    assert main(["import", "diffusers", str(tmp_path / "kl"), "--out", str(tmp_path / "run")]) == 0
    with torch.no_grad():
        expected = source(_images(), sample_posterior=False).sample
    assert (_reconstruct(tmp_path / "run") - expected).abs().max() < 1e-4
    record = json.loads((tmp_path / "run" / "imported.json").read_text())
    assert record["scaling_factor"] == 0.5 and record["class"] == "AutoencoderKL"
    # No dataset is invented: the run records one only when given one.
    assert "data" not in yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    again = tmp_path / "other-data"
    argv = ["import", "diffusers", str(tmp_path / "kl"), "--out", str(again), "--data"]
    assert main([*argv, "{name: photo-patches, size: 32, train_patches: 16}"]) == 0
    assert yaml.safe_load((again / "recipe.yaml").read_text())["data"]["train_patches"] == 16
    run = load_run(tmp_path / "run")
    assert run.model.bottleneck.output_dim == 4  # 8 channels in: 4 means, 4 log-variances


def _ddconfig(z_channels: int) -> dict:
    return dict(
        double_z=False,
        z_channels=z_channels,
        resolution=SIZE,
        in_channels=3,
        out_ch=3,
        ch=32,
        ch_mult=[1, 2],
        num_res_blocks=1,
        attn_resolutions=[16],
        dropout=0.0,
    )


def _save_taming(tmp_path, modules: torch.nn.ModuleDict, target: str, params: dict) -> None:
    """last.ckpt and config.yaml as taming's Lightning training writes them."""
    state = {**modules.state_dict(), "loss.discriminator.main.0.weight": torch.zeros(1)}
    # Lightning also pickles callbacks and hyper-parameters: objects of its own classes.
    torch.save(
        {"state_dict": state, "epoch": 3, "callbacks": {torch.nn.Identity: {}}},
        tmp_path / "last.ckpt",
    )
    config = {"model": {"target": f"taming.models.vqgan.{target}", "params": params}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))


def _taming_checkpoint(tmp_path):
    ddconfig = _ddconfig(z_channels=32)
    torch.manual_seed(0)
    modules = torch.nn.ModuleDict(
        {
            "encoder": taming_model.Encoder(**ddconfig),
            "decoder": taming_model.Decoder(**ddconfig),
            "quantize": taming_quantize.VectorQuantizer(48, 8, beta=0.25),
            "quant_conv": torch.nn.Conv2d(32, 8, 1),
            "post_quant_conv": torch.nn.Conv2d(8, 32, 1),
        }
    ).eval()
    params = {"embed_dim": 8, "n_embed": 48, "ddconfig": ddconfig, "lossconfig": {}}
    _save_taming(tmp_path, modules, "VQModel", params)
    return modules


def test_taming_checkpoint_reconstructs_as_taming_does(tmp_path):
    modules = _taming_checkpoint(tmp_path)
    argv = [
        "import",
        "taming",
        str(tmp_path / "last.ckpt"),
        "--config",
        str(tmp_path / "config.yaml"),
    ]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    with torch.no_grad():
        quantized, _, _ = modules["quantize"](modules["quant_conv"](modules["encoder"](_images())))
        expected = modules["decoder"](modules["post_quant_conv"](quantized))
    assert (_reconstruct(tmp_path / "run") - expected).abs().max() < 1e-4
    record = json.loads((tmp_path / "run" / "imported.json").read_text())
    assert record["ignored_keys"] == ["loss.discriminator.main.0.weight"]
    # Imported runs carry a manifest like trained ones: a damaged weight file is refused.
    weights = tmp_path / "run" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(LaserError, match=r"model\.safetensors"):
        load_run(tmp_path / "run")


def test_keys_that_do_not_map_are_listed(tmp_path):
    modules = _taming_checkpoint(tmp_path)
    state = {**modules.state_dict(), "ema.decay": torch.ones(1)}
    torch.save({"state_dict": state}, tmp_path / "last.ckpt")
    from laser_core.importers.taming import read_taming

    with pytest.raises(LaserError, match=r"keys LASER cannot map: ema\.decay"):
        read_taming(tmp_path / "last.ckpt", tmp_path / "config.yaml")


def test_a_checkpoint_never_runs_the_code_it_names(tmp_path):
    class Payload:
        def __reduce__(self):
            return (exec, ("import pathlib; pathlib.Path('pwned').touch()",))

    modules = _taming_checkpoint(tmp_path)
    torch.save({"state_dict": modules.state_dict(), "x": Payload()}, tmp_path / "last.ckpt")
    from laser_core.importers.checkpoint_reader import read_state_dict

    assert set(read_state_dict(tmp_path / "last.ckpt")) == set(modules.state_dict())
    assert not (tmp_path / "pwned").exists()


def test_a_file_that_is_no_checkpoint_is_named_not_a_traceback(tmp_path):
    from laser_core.importers.checkpoint_reader import read_state_dict

    (tmp_path / "notes.ckpt").write_text("garbage")
    with pytest.raises(LaserError, match=r"notes\.ckpt: not a readable torch checkpoint"):
        read_state_dict(tmp_path / "notes.ckpt")


class GumbelQuantizeShape(torch.nn.Module):
    """The parameters of taming's GumbelQuantize (which the PyPI taming package lacks): a 1x1
    convolution to one logit per code, and the codes as an embedding."""

    def __init__(self, channels: int, codes: int):
        super().__init__()
        self.proj = torch.nn.Conv2d(channels, codes, 1)
        self.embed = torch.nn.Embedding(codes, channels)


def _gumbel_checkpoint(tmp_path, z_channels=8, embed_dim=8, **params):
    ddconfig = _ddconfig(z_channels)
    torch.manual_seed(0)
    modules = torch.nn.ModuleDict(
        {
            "encoder": taming_model.Encoder(**ddconfig),
            "decoder": taming_model.Decoder(**ddconfig),
            "quantize": GumbelQuantizeShape(embed_dim, 48),
            "quant_conv": torch.nn.Conv2d(z_channels, embed_dim, 1),
            "post_quant_conv": torch.nn.Conv2d(embed_dim, z_channels, 1),
        }
    ).eval()
    scheduler = {
        "target": "taming.lr_scheduler.LambdaWarmUpCosineScheduler",
        "params": {
            "warm_up_steps": 0,
            "lr_start": 0.9,
            "lr_max": 0.9,
            "lr_min": 1e-6,
            "max_decay_steps": 1000,
        },
    }
    config = {
        "embed_dim": embed_dim,
        "n_embed": 48,
        "kl_weight": 1e-6,
        "temperature_scheduler_config": scheduler,
        "ddconfig": ddconfig,
        "lossconfig": {},
        **params,
    }
    _save_taming(tmp_path, modules, "GumbelVQ", config)
    return modules


@torch.no_grad()
def _gumbel_reference(modules, images):
    """GumbelVQ's forward without the Gumbel noise: the argmax of the logits picks each code.
    Returns reconstructions and codes (batch, height, width)."""
    latents = modules["quant_conv"](modules["encoder"](images))
    codes = modules["quantize"].proj(latents).argmax(1)
    quantized = modules["quantize"].embed.weight[codes].permute(0, 3, 1, 2)
    return modules["decoder"](modules["post_quant_conv"](quantized)), codes


def test_taming_gumbel_checkpoint_maps_onto_gumbel_and_decodes_its_argmax_codes(tmp_path, capsys):
    modules = _gumbel_checkpoint(tmp_path)
    run_dir = tmp_path / "run"
    argv = ["import", "taming", str(tmp_path / "last.ckpt"), "--config"]
    assert main([*argv, str(tmp_path / "config.yaml"), "--out", str(run_dir)]) == 0
    expected, expected_codes = _gumbel_reference(modules, _images())
    run = load_run(run_dir)
    with torch.no_grad():
        reconstruction, output = run.model(_images())
    assert (reconstruction - expected).abs().max() < 1e-4
    assert torch.equal(output.codes.indices[..., 0], expected_codes)
    assert len(expected_codes.unique()) > 1  # the codes are not all one

    bottleneck = yaml.safe_load((run_dir / "recipe.yaml").read_text())["bottleneck"]
    assert bottleneck["name"] == "gumbel" and bottleneck["kl_weight"] == 1e-6
    assert (bottleneck["temperature_start"], bottleneck["temperature_end"]) == (0.9, 1e-6)
    assert bottleneck["anneal_steps"] == 1000 and bottleneck["anneal"] == "linear"
    record = json.loads((run_dir / "imported.json").read_text())
    assert record["class"] == "GumbelVQ"
    assert any("taming draws Gumbel noise in eval" in note for note in record["notes"])
    assert "# Eval and encode differ" in (run_dir / "recipe.yaml").read_text()

    # eval and export read the imported run on the dataset they are given, and say so when
    # given none; exported codes are the noise-free argmax.
    capsys.readouterr()
    assert main(["eval", str(run_dir)]) == 1
    err = capsys.readouterr().err
    assert "records no dataset" in err and "3-channel images of 32 pixels" in err, err
    block = "{name: photo-patches, size: 32, train_patches: 4, val_patches: 4}"
    assert main(["eval", str(run_dir), "--dataset", block]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["mse"] > 0
    assert main(["export", str(run_dir), "--data", block, "--out", str(tmp_path / "export")]) == 0
    exported = open_export(tmp_path / "export").load(("indices",))["indices"]
    val = load_run(run_dir, dataset_overrides(yaml.safe_load(block))).data.val
    images = torch.stack([val[i]["image"] for i in range(len(val))])
    assert torch.equal(exported[..., 0].long(), _gumbel_reference(modules, images)[1])


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"z_channels": 16}, r"z_channels 16 != embed_dim 8"),
        ({"remap": "used.npy"}, r"remap is set"),
        ({"missing": "quantize.proj.bias"}, r"needs weights .* bottleneck\.projection\.bias"),
        (
            {
                "temperature_scheduler_config": {
                    "target": "taming.lr_scheduler.LambdaWarmUpCosineScheduler",
                    "params": {"lr_max": 0.9, "lr_min": 0, "max_decay_steps": 100},
                }
            },
            r"params\.lr_min is 0; gumbel needs a positive temperature",
        ),
    ],
)
def test_a_gumbel_checkpoint_of_another_form_is_a_clear_error(tmp_path, capsys, form, message):
    missing = form.pop("missing", None)
    modules = _gumbel_checkpoint(tmp_path, **form)
    if missing:
        state = {k: v for k, v in modules.state_dict().items() if k != missing}
        torch.save({"state_dict": state}, tmp_path / "last.ckpt")
    argv = ["import", "taming", str(tmp_path / "last.ckpt"), "--config"]
    assert main([*argv, str(tmp_path / "config.yaml"), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_gumbel_temperature_schedule_other_than_tamings_cosine_keeps_gumbels_defaults(tmp_path):
    from laser_core.importers.taming import read_taming

    _gumbel_checkpoint(tmp_path, temperature_scheduler_config={"target": "my.Schedule"})
    imported = read_taming(tmp_path / "last.ckpt", tmp_path / "config.yaml")
    assert not {"temperature_start", "temperature_end", "anneal_steps"} & set(
        imported.blocks["bottleneck"]
    )
    assert "gumbel's default" in imported.notes[-1]
