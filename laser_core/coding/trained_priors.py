"""Priors trained on a run's codes, as ``laser prior`` stores them in the run directory:

    priors/codes.safetensors   the run's tokens, exported once (priors/export.py)
    priors/NAME/prior.json     the prior block, its provider, the SymbolSpec, and the run it
                               was trained for: the model's identity and the identity of the
                               value quantizer (priors.safetensors) its tokens were made with
    priors/NAME/model.safetensors, metrics.json, samples.png, manifest.json, checkpoints/

A prior is refused for another run's codes and for codes of another alphabet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from laser_core.coding.identity import digest
from laser_core.errors import LaserError
from laser_core.plugin.checks import check_built
from laser_core.plugin.contracts import BuildContext
from laser_core.plugin.priors import Prior, SymbolSpec
from laser_core.plugin.registry import Provider, Registry, default_registry
from laser_core.rundir import manifest
from laser_core.rundir.layout import RunDir

PRIORS_DIR = RunDir.TRAINED_PRIORS
PRIOR_FILE = "prior.json"
WEIGHTS_FILE = "model.safetensors"
SEALED = (PRIOR_FILE, WEIGHTS_FILE, "metrics.json")
"""The files of a finished prior that its manifest covers."""


@dataclass
class TrainedPrior:
    """A finished prior: its name (its folder's), the built model in eval mode, and its
    identity, which a ``.lsr`` file coded under it records."""

    name: str
    directory: Path
    prior: Prior
    identity: bytes

    @property
    def spec(self) -> SymbolSpec:
        return self.prior.spec


def prior_dir(run_dir: Path, name: str) -> Path:
    return run_dir / PRIORS_DIR / name


def trained_prior_names(run_dir: Path) -> list[str]:
    """Names of the finished priors in ``run_dir``, sorted."""
    folder = run_dir / PRIORS_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / WEIGHTS_FILE).is_file())


def prior_record(
    block: dict[str, Any],
    provider: Provider,
    spec: SymbolSpec,
    model_id: bytes,
    symbols_id: bytes,
) -> dict[str, Any]:
    """The content of prior.json."""
    return {
        "prior": block,
        "provider": {
            "plugin": provider.plugin,
            "distribution": provider.distribution,
            "version": provider.version,
        },
        "symbols": spec.to_dict(),
        "model": model_id.hex(),
        "quantizer": symbols_id.hex(),
    }


def build_prior(
    block: dict[str, Any],
    spec: SymbolSpec,
    pinned: Provider | None = None,
    registry: Registry | None = None,
) -> Prior:
    """The prior a block ``{name: ..., key: value}`` describes, untrained, for ``spec``."""
    params = dict(block)
    name = params.pop("name")
    component = (registry or default_registry()).get("priors", name, pinned)
    config = component.config.model_validate(params)
    prior = component.factory(config, BuildContext(symbols=spec))
    check_built("priors", prior)
    return prior


def load_trained_prior(
    run_dir: Path, name: str, model_id: bytes, symbols: SymbolSpec, symbols_id: bytes
) -> TrainedPrior:
    """The finished prior ``name`` of ``run_dir``, checked against the run's model identity,
    its tokens' spec ``symbols`` and its value quantizer's identity ``symbols_id``."""
    folder = prior_dir(run_dir, name)
    if not (folder / WEIGHTS_FILE).is_file():
        found = ", ".join(trained_prior_names(run_dir)) or "none"
        raise LaserError(
            f"{run_dir} has no trained prior '{name}' (trained priors: {found}); train one with "
            f"`laser prior {run_dir} recipes/priors/transformer-cpu.yaml`"
        )
    manifest.verify(folder, list(SEALED))
    record = json.loads((folder / PRIOR_FILE).read_text())
    if record["model"] != model_id.hex():
        raise LaserError(
            f"the prior {folder} was trained on another run's codes (model "
            f"{record['model'][:12]}, this run's is {model_id.hex()[:12]}); train it again with "
            f"`laser prior {run_dir} RECIPE`"
        )
    trained_for = SymbolSpec.from_dict(record["symbols"])
    if trained_for != symbols or record["quantizer"] != symbols_id.hex():
        raise LaserError(
            f"the prior {folder} models other codes than this run makes now (its alphabets "
            f"{list(trained_for.alphabet_sizes)} on a {list(trained_for.grid)} grid, the run's "
            f"{list(symbols.alphabet_sizes)} on {list(symbols.grid)}; or the value quantizer "
            f"was recounted since); train it again with `laser prior {run_dir} RECIPE`"
        )
    pinned = Provider(**record["provider"])
    prior = build_prior(record["prior"], trained_for, pinned)
    prior.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    identity = digest(*((folder / f).read_bytes() for f in (PRIOR_FILE, WEIGHTS_FILE)))
    return TrainedPrior(name, folder, prior.eval(), identity)
