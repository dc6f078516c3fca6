"""Imported autoencoders reconstruct exactly as their source library does: small randomly
initialised models built and saved by diffusers and taming-transformers themselves, imported
with `laser import`, reopened with load_run and compared with the library's own forward pass."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from laser_core import LaserError, load_run
from laser_core.cli import main

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
    # The default data block is replaced as on the command line.
    again = tmp_path / "other-data"
    argv = ["import", "diffusers", str(tmp_path / "kl"), "--out", str(again), "--data"]
    assert main([*argv, "{name: photo-patches, size: 32, train_patches: 16}"]) == 0
    assert yaml.safe_load((again / "recipe.yaml").read_text())["data"]["train_patches"] == 16
    run = load_run(tmp_path / "run")
    assert run.model.bottleneck.output_dim == 4  # 8 channels in: 4 means, 4 log-variances


def _taming_checkpoint(tmp_path):
    ddconfig = dict(
        double_z=False,
        z_channels=32,
        resolution=SIZE,
        in_channels=3,
        out_ch=3,
        ch=32,
        ch_mult=[1, 2],
        num_res_blocks=1,
        attn_resolutions=[16],
        dropout=0.0,
    )
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
    state = {**modules.state_dict(), "loss.discriminator.main.0.weight": torch.zeros(1)}
    # Lightning also pickles callbacks and hyper-parameters: objects of its own classes.
    torch.save(
        {"state_dict": state, "epoch": 3, "callbacks": {torch.nn.Identity: {}}},
        tmp_path / "last.ckpt",
    )
    config = {
        "model": {
            "target": "taming.models.vqgan.VQModel",
            "params": {"embed_dim": 8, "n_embed": 48, "ddconfig": ddconfig, "lossconfig": {}},
        }
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
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
