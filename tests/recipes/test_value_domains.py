"""Every value of the core's configs has its real domain: wrong ones fail at `laser validate`
with their key, instead of training something else or crashing later."""

from __future__ import annotations

import pytest

from laser_core.errors import RecipeError
from laser_core.recipes.model import load_recipe
from tests.helpers import TINY_RECIPE

WRONG = [
    ("data.batch_size=0", "data.batch_size", "greater than or equal to 1"),
    ("data.batch_size=-16", "data.batch_size", "greater than or equal to 1"),
    ("data.batch_size=true", "data.batch_size", "valid integer"),
    ("data.batch_size=8.0", "data.batch_size", "valid integer"),
    ("data.num_workers=-2", "data.num_workers", "greater than or equal to 0"),
    ("train.lr=.inf", "train.lr", "finite number"),
    ("train.lr=.nan", "train.lr", "finite number"),
    ("train.lr=true", "train.lr", "is a bool, not a number"),
    ("train.betas=[2, -1]", "train.betas.0", "less than 1"),
    ("train.betas=[0.9, 1.0]", "train.betas.1", "less than 1"),
    ("train.lr_per_component={bottleneck: -0.1}", "train.lr_per_component.bottleneck", "greater"),
    ("train.grad_accum=0", "train.grad_accum", "greater than or equal to 1"),
    ("train.weight_decay=-1", "train.weight_decay", "greater than or equal to 0"),
    ("seed=-1", "seed", "greater than or equal to 0"),
    ("seed=100000000000000000000000", "seed", "an integer of 24 digits"),
    ("seed=4294967296", "seed", "less than or equal to 4294967295"),
    ("losses.recon={}", "losses.recon", "at least 1 item"),
    ("losses.recon={l1: .inf}", "losses.recon.l1", "finite number"),
    ("losses.perceptual=-0.5", "losses.perceptual", "greater than or equal to 0"),
    ("losses.resolutions=0", "losses.resolutions", "greater than or equal to 1"),
]


@pytest.mark.parametrize(("override", "key", "expected"), WRONG, ids=[w[0] for w in WRONG])
def test_a_value_outside_its_domain_is_refused_at_its_key(write_recipe, override, key, expected):
    with pytest.raises(RecipeError) as caught:
        load_recipe(write_recipe(TINY_RECIPE), [override])
    lines = [line for line in str(caught.value).splitlines() if f": {key}:" in line]
    assert any(expected in line for line in lines), str(caught.value)


def test_the_edges_of_each_domain_are_accepted(write_recipe):
    overrides = [
        "seed=4294967295",
        "train.betas=[0, 0.999]",
        "train.lr=1e-4",  # YAML reads 1e-4 as a string; it still converts
        "data.num_workers=0",
        "losses.recon={l1: 0.5, l2: 0}",
        "train.grad_clip=null",
    ]
    recipe = load_recipe(write_recipe(TINY_RECIPE), overrides)
    assert recipe.seed == 2**32 - 1 and recipe.train.betas == (0.0, 0.999)
    assert recipe.train.lr == pytest.approx(1e-4)


PLUGIN_BOUNDS = [
    ("bottleneck.codebook_size=2000000", "vq", "is more than 1,048,576: each training batch"),
    ("bottleneck={name: gumbel, codebook_size: 2000000}", "gumbel", "is more than 1,048,576"),
    ("bottleneck={name: rq, levels: 100}", "rq", "is more than 64: each level is a codebook"),
    ("bottleneck={name: omp, atoms: 100000}", "omp", "is more than 65,536: Batch-OMP keeps"),
    ("encoder.channels=[0, 16]", "conv", "greater than or equal to 1"),
    ("encoder.channels=[-32, 16]", "conv", "greater than or equal to 1"),
]


@pytest.mark.parametrize(("override", "plugin", "expected"), PLUGIN_BOUNDS)
def test_plugin_counts_are_bounded_with_the_reason(write_recipe, override, plugin, expected):
    with pytest.raises(RecipeError) as caught:
        load_recipe(write_recipe(TINY_RECIPE), [override])
    assert expected in str(caught.value)


def test_a_union_value_is_judged_by_the_branch_it_is_written_as(write_recipe):
    with pytest.raises(RecipeError) as caught:
        load_recipe(write_recipe(TINY_RECIPE), ["losses.recon={l1: .inf}"])
    lines = str(caught.value).splitlines()[1:]
    assert len(lines) == 1 and "losses.recon.l1: Input should be a finite number" in lines[0]
