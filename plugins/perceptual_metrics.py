"""Metrics seen through a pretrained network: ``lpips`` per image pair, and ``fid`` and ``kid``
(rFID, rKID) between the validation images and their reconstructions.

FID and KID follow the Metric contract: ``per_example`` gives each example's features, which
are gathered across processes, and ``summarize`` compares the two sets with torchmetrics. The
features come from torchmetrics' Inception (weights from the torch cache, see
:mod:`laser_core.assembly.weights`) or from any saved module (torch.export or TorchScript), e.g. a
classifier of one's own, so that FID works offline and in other domains.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from pydantic import Field
from torch import nn

from laser_core import (
    BackboneWeights,
    BottleneckOutput,
    BuildContext,
    ComponentConfig,
    LaserError,
    LpipsNet,
    PositiveInt,
    Register,
    build_lpips,
    hookimpl,
    require_weights,
)

log = logging.getLogger(__name__)


class LPIPSConfig(ComponentConfig):
    net: LpipsNet = "alex"
    backbone: BackboneWeights = Field(
        "pretrained", description="random: untrained backbone, NOT LPIPS; for tests only"
    )


class LPIPSMetric:
    """LPIPS perceptual distance (lpips package), averaged.

    Per example, lower is closer."""

    def __init__(self, config: LPIPSConfig, context: BuildContext):
        size, channels = context.image_size, context.image_channels
        self.lpips = build_lpips(config.net, config.backbone, channels, size, "metric lpips")

    def per_example(
        self, images: torch.Tensor, reconstructions: torch.Tensor, output: BottleneckOutput
    ) -> torch.Tensor:
        return self.lpips.to(images.device)(images, reconstructions.clamp(-1, 1))

    def summarize(self, values: torch.Tensor) -> dict[str, float]:
        return {"lpips": values.mean().item()}


class FeatureConfig(ComponentConfig):
    features: str = Field(
        "inception",
        description="inception (torchmetrics' 2048-d pool features, weights from the torch "
        "cache), or a file mapping images (B, C, H, W) in [-1, 1] to features (B, D): a .pt2 "
        "of torch.export.save with a dynamic batch, or TorchScript",
    )


class KIDConfig(FeatureConfig):
    subsets: PositiveInt = Field(100, description="random subsets the MMD is averaged over")
    subset_size: PositiveInt = Field(
        1000, ge=2, description="examples per subset; capped, with a warning, at the count"
    )


class InceptionFeatures(nn.Module):
    """Images (B, C, H, W) in [-1, 1] -> torchmetrics' Inception pool features (B, 2048)."""

    def __init__(self, path: Path):
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.inception = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048"],
            feature_extractor_weights_path=str(path),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pixels = images.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
        return self.inception(pixels.expand(-1, 3, -1, -1))


def load_features(spec: str) -> nn.Module:
    """The feature extractor a ``features:`` key names, loaded (and so checked) at build time:
    Inception, an exported program (``.pt2``, ``torch.export.save``) or TorchScript."""
    if spec == "inception":
        return InceptionFeatures(require_weights("inception"))
    path = Path(spec)
    if not path.is_file():
        raise LaserError(
            f"features: '{spec}' is neither 'inception' nor a file (.pt2 from "
            "torch.export.save, or TorchScript)"
        )
    try:
        if path.suffix == ".pt2":
            return torch.export.load(str(path)).module()
        return torch.jit.load(str(path), map_location="cpu").eval()
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        raise LaserError(
            f"features: {path} is not a module saved by torch.export.save (.pt2) or TorchScript "
            f"({first_line})"
        ) from None


class FeaturePairs:
    """Features of each image and of its reconstruction: per_example -> (B, 2, D), fp32."""

    def __init__(self, config: FeatureConfig, context: BuildContext):
        self.extractor = load_features(config.features)

    @torch.no_grad()
    def per_example(
        self, images: torch.Tensor, reconstructions: torch.Tensor, output: BottleneckOutput
    ) -> torch.Tensor:
        extractor = self.extractor.to(images.device)
        pair = torch.cat([images, reconstructions.clamp(-1, 1)]).float()
        features = extractor(pair).float().flatten(1)
        real, fake = features.chunk(2)
        return torch.stack([real, fake], dim=1)


class Precomputed(nn.Module):
    """Hands torchmetrics features already computed: (N, D) -> (N, D)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class FID(FeaturePairs):
    """rFID: Fréchet distance of image vs reconstruction features (torchmetrics).

    The distance between the Gaussians fitted to the two sets of features."""

    def summarize(self, values: torch.Tensor) -> dict[str, float]:
        from torchmetrics.image.fid import FrechetInceptionDistance

        if values.shape[0] < 2:
            return {}
        # Every process already holds all gathered features: torchmetrics must not sync again.
        fid = FrechetInceptionDistance(feature=Precomputed(values.shape[-1]), sync_on_compute=False)
        fid.update(values[:, 0], real=True)
        fid.update(values[:, 1], real=False)
        return {"fid": fid.compute().item()}


class KID(FeaturePairs):
    """rKID: kernel distance of image vs reconstruction features, mean and std.

    The polynomial MMD, unbiased for independent samples, so usable with few examples.
    Subsets are drawn from a fixed seed, apart from the training's random stream, so numbers
    repeat."""

    def __init__(self, config: KIDConfig, context: BuildContext):
        super().__init__(config, context)
        self.config = config

    def summarize(self, values: torch.Tensor) -> dict[str, float]:
        from torchmetrics.image.kid import KernelInceptionDistance

        count = values.shape[0]
        if count < 2:
            return {}
        size = min(self.config.subset_size, count)
        if size < self.config.subset_size:
            log.warning(
                "kid: %d examples, fewer than subset_size=%d; each subset takes them all",
                count,
                self.config.subset_size,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its notice that it keeps every feature in memory
            kid = KernelInceptionDistance(
                feature=Precomputed(values.shape[-1]),
                subsets=self.config.subsets,
                subset_size=size,
                sync_on_compute=False,
            )
        kid.update(values[:, 0], real=True)
        kid.update(values[:, 1], real=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            mean, std = kid.compute()
        return {"kid": mean.item(), "kid_std": std.item()}


@hookimpl
def laser_register_metrics(register: Register) -> None:
    register("lpips", LPIPSMetric, config=LPIPSConfig)
    register("fid", FID, config=FeatureConfig)
    register("kid", KID, config=KIDConfig)
