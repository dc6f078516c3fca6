"""Recipes: validation errors point at file:line and key, extends and overrides merge as
documented, and every shipped recipe validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from laser_core.recipes.model import load_recipe
from tests.helpers import RECIPES, TINY_RECIPE, problems_of, shipped_recipes


def test_valid_recipe_fills_defaults(write_recipe):
    recipe = load_recipe(write_recipe(TINY_RECIPE))
    assert recipe.bottleneck.name == "vq"
    assert recipe.bottleneck.config.codebook_size == 16
    assert recipe.train.steps == 6
    assert recipe.train.grad_accum == 1  # default filled in
    assert [m.name for m in recipe.metrics] == ["mse", "psnr"]


def test_misspelt_plugin_key_names_file_line_key_and_suggestion(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("codebook_size: 16", "codebok_size: 16"))
    message = problems_of(path)
    assert (
        f"{path.resolve()}:4: bottleneck.codebok_size: unknown key for bottleneck 'vq'" in message
    )
    assert "did you mean 'codebook_size'?" in message


def test_misspelt_recipe_key_suggests_the_right_one(write_recipe):
    path = write_recipe(TINY_RECIPE + "\nlosess: {recon: l1}\n")
    message = problems_of(path)
    assert f"{path.resolve()}:9: losess: unknown key for a recipe" in message
    assert "did you mean 'losses'?" in message


def test_misspelt_nested_recipe_key_suggests_from_its_section(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("log_every: 1", "log_evry: 1"))
    assert "train.log_evry: unknown key for a recipe; did you mean 'log_every'?" in problems_of(
        path
    )


def test_wrong_type_names_the_key_and_the_value(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("steps: 6", "steps: many"))
    message = problems_of(path)
    assert f"{path.resolve()}:7: train.steps:" in message
    assert "'many'" in message


def test_a_metric_listed_twice_is_named_with_its_line(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("metrics: [mse, psnr]", "metrics:\n- mse\n- mse"))
    message = problems_of(path)
    assert f"{path.resolve()}:8: metrics.1: metric 'mse' is listed twice" in message


def test_unknown_plugin_lists_available_ones_and_suggests(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("name: vq,", "name: vqq,"))
    message = problems_of(path)
    assert f"{path.resolve()}:4: bottleneck.name: unknown bottleneck 'vqq'" in message
    assert "did you mean 'vq'?" in message
    assert "available:" in message and "vq" in message.split("available:")[1]


def test_every_problem_is_reported_at_once(write_recipe):
    text = TINY_RECIPE.replace("codebook_size", "codebok_size").replace("steps: 6", "steps: x")
    message = problems_of(write_recipe(text))
    assert "codebok_size" in message and "train.steps" in message


def test_block_without_name_says_which_names_exist(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("name: vq, ", ""))
    message = problems_of(path)
    assert "bottleneck: needs 'name:'" in message and "vq" in message


def test_extends_merges_mappings_deeply_and_replaces_lists(write_recipe):
    write_recipe(TINY_RECIPE, "base.yaml")
    child = write_recipe(
        """
        extends: [base.yaml]
        train: {steps: 3}
        encoder: {channels: [4]}
        metrics: [psnr]
        """
    )
    recipe = load_recipe(child)
    assert recipe.train.steps == 3 and recipe.train.lr == 0.005  # merged, not replaced
    assert recipe.encoder.config.channels == [4] and recipe.encoder.config.latent_dim == 4
    assert [m.name for m in recipe.metrics] == ["psnr"]  # lists replace


def test_extends_block_with_another_name_replaces_the_whole_block(write_recipe):
    write_recipe(TINY_RECIPE, "base.yaml")
    child = write_recipe("extends: base.yaml\nencoder: {name: identity, patch_size: 2}\n")
    recipe = load_recipe(child)
    # the conv keys (channels, latent_dim) of the base block are gone, not misapplied
    assert recipe.encoder.name == "identity" and recipe.encoder.config.patch_size == 2


def test_error_in_a_base_recipe_points_at_the_base_file(write_recipe):
    base = write_recipe(TINY_RECIPE.replace("codebook_size", "codebok_size"), "base.yaml")
    child = write_recipe("extends: [base.yaml]\nseed: 3\n")
    assert f"{base.resolve()}:4: bottleneck.codebok_size" in problems_of(child)


def test_extends_cycle_is_an_error(write_recipe):
    write_recipe("extends: b.yaml\n", "a.yaml")
    b = write_recipe("extends: a.yaml\n", "b.yaml")
    assert "extends itself" in problems_of(b)


def test_override_values_are_parsed_as_yaml(write_recipe):
    recipe = load_recipe(
        write_recipe(TINY_RECIPE), ["train.lr=1e-4", "bottleneck.codebook_size=32"]
    )
    assert recipe.train.lr == pytest.approx(1e-4) and isinstance(recipe.train.lr, float)
    assert recipe.bottleneck.config.codebook_size == 32


def test_override_tilde_deletes_a_key(write_recipe):
    recipe = load_recipe(write_recipe(TINY_RECIPE), ["~train.steps", "~metrics"])
    assert recipe.train.steps == 1000  # back to the default
    assert [m.name for m in recipe.metrics] == ["mse", "psnr"]


def test_bad_override_is_located_at_the_override(write_recipe):
    message = problems_of(write_recipe(TINY_RECIPE), ("train.stepz=3",))
    assert "override 'train.stepz=3': train.stepz: unknown key" in message
    assert "did you mean 'steps'?" in message


def test_override_without_value_is_explained(write_recipe):
    assert "write key.sub=value" in problems_of(write_recipe(TINY_RECIPE), ("train.steps",))


def test_resolved_recipe_reloads_to_the_same_recipe(write_recipe, tmp_path):
    import yaml

    recipe = load_recipe(write_recipe(TINY_RECIPE))
    again = write_recipe(yaml.safe_dump(recipe.resolved()), "resolved.yaml")
    assert load_recipe(again).resolved() == recipe.resolved()


@pytest.mark.parametrize("path", shipped_recipes(), ids=lambda p: str(p.relative_to(RECIPES)))
def test_every_shipped_recipe_validates(path: Path):
    recipe = load_recipe(path)
    assert path.read_text().startswith("#"), (
        "each recipe starts with a comment saying what it shows"
    )
    assert recipe.train.steps > 0


@pytest.mark.parametrize("override", ["~~seed", "~train.~steps", "train..steps=3", "~"])
def test_a_malformed_override_key_is_refused_at_the_override(write_recipe, override):
    message = problems_of(write_recipe(TINY_RECIPE), (override,))
    assert f"override '{override}'" in message and "key.sub=value" in message


def test_a_folder_given_as_a_recipe_lists_the_recipes_in_it(write_recipe, tmp_path):
    write_recipe(TINY_RECIPE, "tiny.yaml")
    write_recipe(TINY_RECIPE, "more/other.yaml")
    message = problems_of(tmp_path)
    assert "is a folder, not a recipe; give one of the recipes in it:" in message
    assert "\n    more/other.yaml\n    tiny.yaml" in message
