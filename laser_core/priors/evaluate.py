"""The held-out bits of a run's trained priors, which ``laser eval`` reports next to the
distortion: a rate for every bottleneck without compressing a file."""

from __future__ import annotations

from pathlib import Path

from laser_core.coding.codec import Codec
from laser_core.coding.trained_priors import trained_prior_names
from laser_core.priors.export import export_tokens
from laser_core.priors.train import held_out_bits


def prior_metrics(run_dir: str | Path) -> dict[str, float]:
    """``prior/<name>/bits_per_image`` and ``.../bits_per_pixel`` of every trained prior of
    the run, on its own validation split's codes, unconditional; {} without trained priors."""
    run_dir = Path(run_dir)
    names = trained_prior_names(run_dir)
    if not names:
        return {}
    codec = Codec.open(run_dir)
    exported = export_tokens(codec)
    metrics = {}
    for name in names:
        prior = codec.with_prior(name).trained.prior
        bits = held_out_bits(prior, exported.val, exported.pixels_per_tile)
        for key in ("bits_per_image", "bits_per_pixel"):
            metrics[f"prior/{name}/{key}"] = bits[key]
    return metrics
