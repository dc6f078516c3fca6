"""Trained priors of a run, opened by name, for ``laser sample``, ``eval`` and ``compress``."""

from __future__ import annotations

from pathlib import Path

from laser_core.coding.codec import Codec
from laser_core.coding.identity import model_identity
from laser_core.coding.trained_priors import TrainedPrior, load_trained_prior, trained_prior_names
from laser_core.errors import LaserError
from laser_core.priors.export import export_tokens
from laser_core.priors.sample import sample_images, write_grid


def open_prior(codec: Codec, name: str | None) -> TrainedPrior:
    """The trained prior ``name`` of the codec's run, checked against its codes; without a
    name, the only one there is."""
    run_dir = codec.run.run_dir
    if name is None:
        names = trained_prior_names(run_dir)
        if not names:
            raise LaserError(
                f"{run_dir} has no trained prior; train one with `laser prior {run_dir} "
                "recipes/priors/transformer-cpu.yaml`"
            )
        if len(names) > 1:
            raise LaserError(
                f"{run_dir} has several trained priors ({', '.join(names)}); pick one with --prior"
            )
        name = names[0]
    spec = export_tokens(codec).spec
    return load_trained_prior(run_dir, name, model_identity(run_dir), spec, codec.priors.identity)


def sample_run(
    run_dir: str | Path,
    output: str | Path,
    n: int = 64,
    prior: str | None = None,
    label: int | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> Path:
    """A PNG grid of ``n`` images sampled from a run's trained prior: what ``laser sample``
    does."""
    if n < 1:
        raise LaserError(f"-n must be at least 1, got {n}")
    if not temperature > 0:
        raise LaserError(f"--temperature must be above 0, got {temperature}")
    codec = Codec.open(Path(run_dir))
    trained = open_prior(codec, prior)
    images = sample_images(codec, trained, n, label, temperature, top_k, seed)
    write_grid(images, Path(output))
    return Path(output)
