"""``vqgan`` encoder and decoder: the convolutional autoencoder of taming-transformers' VQGAN
(Esser et al., 2021), also latent diffusion's autoencoders (diffusers' ``VQModel`` and
``AutoencoderKL``).

Channel multipliers per resolution, several residual blocks per resolution, self-attention at
the resolutions listed in ``attn_resolutions`` and in the middle block, GroupNorm(32) + swish,
strided-conv (or average-pool) downsampling and nearest + conv upsampling. The encoder ends
with the 1x1 ``quant_conv`` into the bottleneck and the decoder starts with the 1x1
``post_quant_conv`` out of it. Module names follow taming's, so that ``laser import taming``
maps a checkpoint key for key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from laser_core import BuildContext, ComponentConfig, LaserError, Register, hookimpl


class VQGANConfig(ComponentConfig):
    """taming's ``ddconfig`` keys, shared by the encoder and the decoder."""

    ch: int = Field(128, ge=1, description="base channel count; multiplied per resolution")
    ch_mult: list[int] = Field(
        [1, 1, 2, 2, 4],
        min_length=1,
        description="channel multiplier per resolution; len - 1 halvings of the image",
    )
    num_res_blocks: int = Field(2, ge=1, description="residual blocks per resolution")
    attn_resolutions: list[int] = Field(
        [16], description="feature-map sides (pixels) at which residual blocks add attention"
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="inside residual blocks")
    z_channels: int = Field(256, ge=1, description="channels around the 1x1 convolutions")
    resamp_with_conv: bool = Field(
        True, description="strided 3x3 conv to downsample (false: 2x2 average pooling)"
    )

    @model_validator(mode="after")
    def _multipliers_positive(self) -> VQGANConfig:
        if any(m < 1 for m in self.ch_mult):
            raise ValueError(f"ch_mult entries must be >= 1, got {self.ch_mult}")
        return self


class VQGANEncoderConfig(VQGANConfig):
    double_z: bool = Field(
        False, description="emit 2 * z_channels (mean and log-variance, for AutoencoderKL)"
    )
    latent_dim: int = Field(
        256, ge=1, description="channels of quant_conv's output, the bottleneck's input"
    )


class VQGANDecoderConfig(VQGANConfig):
    pass


def normalize(channels: int) -> nn.GroupNorm:
    if channels % 32:
        raise LaserError(
            f"vqgan: GroupNorm(32) needs channel counts divisible by 32, got {channels}; "
            "choose ch and ch_mult so that every ch * multiplier is"
        )
    return nn.GroupNorm(32, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, dropout: float):
        super().__init__()
        self.norm1 = normalize(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = normalize(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions, with 1x1 convolutions as projections."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = normalize(channels)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in "qkvo")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels = x.shape[:2]
        h = self.norm(x)
        q, k, v = (
            p(h).reshape(batch, channels, -1).transpose(1, 2) for p in (self.q, self.k, self.v)
        )
        attended = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj_out(attended.transpose(1, 2).reshape(x.shape))


class Downsample(nn.Module):
    def __init__(self, channels: int, with_conv: bool):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2) if with_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is None:
            return F.avg_pool2d(x, 2)
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # taming's asymmetric padding


class Upsample(nn.Module):
    def __init__(self, channels: int, with_conv: bool):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1) if with_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x if self.conv is None else self.conv(x)


class Level(nn.Module):
    """One resolution: residual blocks, attention after each where listed, then a resampling."""

    def __init__(self, blocks: list[ResnetBlock], attention: bool, resample: nn.Module | None):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(AttnBlock(b.conv2.out_channels) for b in blocks if attention)
        if resample is not None:
            self.add_module(
                "downsample" if isinstance(resample, Downsample) else "upsample", resample
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, block in enumerate(self.block):
            x = block(x)
            if self.attn:
                x = self.attn[index](x)
        resample = getattr(self, "downsample", None) or getattr(self, "upsample", None)
        return x if resample is None else resample(x)


class Middle(nn.Module):
    def __init__(self, channels: int, dropout: float):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class VQGANEncoder(nn.Module):
    """taming's VQGAN encoder: channel multipliers, attention, then a 1x1 quant_conv.

    Images (B, C, H, W) -> latents (B, latent_dim, H / 2**(len(ch_mult) - 1), ...)."""

    def __init__(self, config: VQGANEncoderConfig, context: BuildContext):
        super().__init__()
        _check_size(config, context.image_size)
        ch, mult = config.ch, config.ch_mult
        self.conv_in = nn.Conv2d(context.image_channels, ch, 3, padding=1)
        levels, block_in, resolution = [], ch, context.image_size
        for level, m in enumerate(mult):
            blocks = []
            for _ in range(config.num_res_blocks):
                blocks.append(ResnetBlock(block_in, ch * m, config.dropout))
                block_in = ch * m
            last = level == len(mult) - 1
            down = None if last else Downsample(block_in, config.resamp_with_conv)
            levels.append(Level(blocks, resolution in config.attn_resolutions, down))
            resolution = resolution if last else resolution // 2
        self.down = nn.ModuleList(levels)
        self.mid = Middle(block_in, config.dropout)
        self.norm_out = normalize(block_in)
        z_out = 2 * config.z_channels if config.double_z else config.z_channels
        self.conv_out = nn.Conv2d(block_in, z_out, 3, padding=1)
        self.quant_conv = nn.Conv2d(z_out, config.latent_dim, 1)
        self.latent_dim = config.latent_dim
        self.downsampling = 2 ** (len(mult) - 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(images)
        for level in self.down:
            h = level(h)
        h = self.conv_out(F.silu(self.norm_out(self.mid(h))))
        return self.quant_conv(h)


class VQGANDecoder(nn.Module):
    """taming's VQGAN decoder: a 1x1 post_quant_conv, attention, nearest + conv ups.

    Latents (B, latent_dim, h, w) -> images (B, C, h * 2**(len(ch_mult) - 1), ...)."""

    def __init__(self, config: VQGANDecoderConfig, context: BuildContext):
        super().__init__()
        _check_size(config, context.image_size)
        ch, mult = config.ch, config.ch_mult
        self.post_quant_conv = nn.Conv2d(context.latent_dim, config.z_channels, 1)
        block_in = ch * mult[-1]
        resolution = context.image_size // 2 ** (len(mult) - 1)
        self.conv_in = nn.Conv2d(config.z_channels, block_in, 3, padding=1)
        self.mid = Middle(block_in, config.dropout)
        levels: list[Level] = []
        for level in reversed(range(len(mult))):
            blocks = []
            for _ in range(config.num_res_blocks + 1):
                blocks.append(ResnetBlock(block_in, ch * mult[level], config.dropout))
                block_in = ch * mult[level]
            up = Upsample(block_in, config.resamp_with_conv) if level else None
            levels.insert(0, Level(blocks, resolution in config.attn_resolutions, up))
            resolution = resolution * 2 if level else resolution
        self.up = nn.ModuleList(levels)  # indexed by resolution level, as taming's
        self.norm_out = normalize(block_in)
        self.conv_out = nn.Conv2d(block_in, context.image_channels, 3, padding=1)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(self.post_quant_conv(latents)))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def _check_size(config: VQGANConfig, image_size: int) -> None:
    factor = 2 ** (len(config.ch_mult) - 1)
    if image_size % factor:
        raise LaserError(
            f"vqgan: ch_mult has {len(config.ch_mult)} resolutions, so images are halved "
            f"{len(config.ch_mult) - 1} times, but {image_size}-pixel images are not divisible "
            f"by {factor}; shorten ch_mult or change the dataset's size"
        )


@hookimpl
def laser_register_encoders(register: Register) -> None:
    register("vqgan", VQGANEncoder, config=VQGANEncoderConfig)


@hookimpl
def laser_register_decoders(register: Register) -> None:
    register("vqgan", VQGANDecoder, config=VQGANDecoderConfig)
