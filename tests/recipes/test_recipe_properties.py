"""A resolved recipe validates to itself (hypothesis): whatever a recipe and its overrides say,
the recipe.yaml a run directory records reloads to the same resolved recipe, so `laser run` on
it reruns the experiment."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from laser_core.recipes.model import load_recipe
from tests.bottlenecks.test_contract_properties import bottleneck_case
from tests.helpers import shipped_recipes

RECIPES = shipped_recipes()
floats = st.floats(min_value=1e-6, max_value=10, allow_nan=False, allow_infinity=False)


@st.composite
def overrides(draw) -> list[str]:
    """Command-line overrides of train, losses, metrics and the bottleneck block."""
    chosen = {
        "seed": draw(st.integers(0, 2**31 - 1)),
        "train.lr": draw(floats),
        "train.steps": draw(st.integers(0, 10**6)),
        "train.grad_accum": draw(st.integers(1, 8)),
        "train.grad_clip": draw(st.none() | floats),
        "train.precision": draw(st.sampled_from([None, "no", "bf16", "fp16"])),
        "train.betas": draw(st.lists(st.floats(0, 0.999), min_size=2, max_size=2)),
        "train.lr_per_component": draw(
            st.dictionaries(st.sampled_from(["encoder", "bottleneck", "decoder"]), floats)
        ),
        "losses.recon": draw(
            st.sampled_from(["l1", "l2"])
            | st.dictionaries(st.sampled_from(["l1", "l2"]), floats, min_size=1)
        ),
        "losses.dct": draw(st.floats(0, 1)),
        "metrics": draw(st.lists(st.sampled_from(["mse", "psnr", "ssim"]), unique=True)),
    }
    if draw(st.booleans()):
        block, _ = draw(bottleneck_case(draw(st.sampled_from(["vq", "rq", "gumbel", "gaussian"]))))
        chosen["bottleneck"] = block
    picked = draw(st.lists(st.sampled_from(sorted(chosen)), unique=True))
    return [f"{key}={json.dumps(chosen[key])}" for key in picked]  # JSON is YAML


@settings(max_examples=25, deadline=None)
@given(path=st.sampled_from(RECIPES), changes=overrides())
def test_a_resolved_recipe_validates_to_itself(path, changes):
    resolved = load_recipe(path, changes).resolved()
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "recipe.yaml"
        saved.write_text(yaml.safe_dump(resolved, sort_keys=False))
        assert load_recipe(saved).resolved() == resolved
