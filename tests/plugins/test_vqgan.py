"""The vqgan encoder and decoder are taming-transformers' networks: key for key and number for
number against taming's own modules, and as large as diffusers' VQModel for the standard f16
and f8 settings."""

from __future__ import annotations

import pytest
import torch
import yaml

from laser_core import BuildContext, build_component, load_recipe
from laser_core.testing import check_component
from tests.helpers import RECIPES

diffusers = pytest.importorskip("diffusers")
taming_model = pytest.importorskip("taming.modules.diffusionmodules.model")

SMALL = dict(ch=32, ch_mult=[1, 2, 2], num_res_blocks=1, attn_resolutions=[16], z_channels=64)


def test_vqgan_matches_taming_key_for_key_and_number_for_number():
    ddconfig = dict(SMALL, double_z=False, resolution=32, in_channels=3, out_ch=3, dropout=0.0)
    torch.manual_seed(0)
    encoder, decoder = taming_model.Encoder(**ddconfig).eval(), taming_model.Decoder(**ddconfig)
    context = BuildContext(image_channels=3, image_size=32, latent_dim=64)
    ours_encoder = build_component(
        "encoders", {"name": "vqgan", **SMALL, "latent_dim": 64}, context
    )
    ours_decoder = build_component("decoders", {"name": "vqgan", **SMALL}, context)
    # The 1x1 convolutions around the bottleneck become identities, leaving taming's networks.
    for conv in (ours_encoder.quant_conv, ours_decoder.post_quant_conv):
        conv.weight.data = torch.eye(64).view(64, 64, 1, 1)
        conv.bias.data.zero_()
    theirs = {
        **{f"e.{k}": v for k, v in encoder.state_dict().items()},
        **{f"d.{k}": v for k, v in decoder.state_dict().items()},
    }
    ours = {
        **{f"e.{k}": v for k, v in ours_encoder.state_dict().items()},
        **{f"d.{k}": v for k, v in ours_decoder.state_dict().items()},
    }
    assert set(ours) - set(theirs) == {
        "e.quant_conv.weight",
        "e.quant_conv.bias",
        "d.post_quant_conv.weight",
        "d.post_quant_conv.bias",
    }
    ours_encoder.load_state_dict(encoder.state_dict(), strict=False)
    ours_decoder.load_state_dict(decoder.state_dict(), strict=False)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert (ours_encoder.eval()(images) - encoder(images)).abs().max() < 1e-5
        latents = torch.randn(2, 64, 8, 8)
        assert (ours_decoder.eval()(latents) - decoder.eval()(latents)).abs().max() < 1e-5


@pytest.mark.parametrize("recipe", ["vqgan-f16.yaml", "vqgan-f8.yaml"])
def test_parameter_counts_equal_diffusers_vqmodel(recipe):
    """The shipped tokenizer recipes build taming's standard models: the same number of weights
    as diffusers' VQModel configured alike (built on the meta device: no memory, no time)."""
    blocks = yaml.safe_load((RECIPES / "tokenizers" / recipe).read_text())
    encoder, decoder, size = blocks["encoder"], blocks["decoder"], blocks["data"]["size"]
    widths = [encoder["ch"] * m for m in encoder["ch_mult"]]
    attention = [size // 2**i in encoder["attn_resolutions"] for i in range(len(widths))]
    with torch.device("meta"):
        reference = diffusers.VQModel(
            block_out_channels=widths,
            down_block_types=[
                "AttnDownEncoderBlock2D" if a else "DownEncoderBlock2D" for a in attention
            ],
            up_block_types=[
                "AttnUpDecoderBlock2D" if a else "UpDecoderBlock2D" for a in reversed(attention)
            ],
            layers_per_block=encoder["num_res_blocks"],
            latent_channels=encoder["z_channels"],
            vq_embed_dim=encoder["latent_dim"],
            num_vq_embeddings=blocks["bottleneck"]["codebook_size"],
            sample_size=size,
        )
        context = BuildContext(image_channels=3, image_size=size, latent_dim=encoder["latent_dim"])
        ours = [
            build_component("encoders", encoder, context),
            build_component("decoders", decoder, context),
        ]
    codebook = blocks["bottleneck"]["codebook_size"] * encoder["latent_dim"]
    assert sum(p.numel() for m in ours for p in m.parameters()) + codebook == sum(
        p.numel() for p in reference.parameters()
    )
    load_recipe(RECIPES / "tokenizers" / recipe)  # and the recipe validates


def test_vqgan_passes_the_conformance_checks():
    context = BuildContext(image_channels=3, image_size=16, latent_dim=8, downsampling=4)
    small = dict(ch=32, ch_mult=[1, 1, 2], num_res_blocks=1, attn_resolutions=[8], z_channels=32)
    check_component("encoders", "vqgan", {**small, "latent_dim": 8}, context)
    check_component("decoders", "vqgan", small, context)
