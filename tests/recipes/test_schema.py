"""`laser schema`: the shipped recipes pass it as written (with `extends:`), a complete recipe
must write every required block, and a typo is reported inside the block that has it."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from laser_core.plugin.blocks import BLOCK_KEYS
from laser_core.plugin.registry import default_registry
from laser_core.recipes.model import load_recipe
from laser_core.recipes.schema import recipe_schema
from tests.helpers import RECIPES, TINY_RECIPE, shipped_recipes


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = recipe_schema(default_registry())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(validator, recipe: dict) -> list[tuple[list, str]]:
    return [(list(e.absolute_path), e.message) for e in validator.iter_errors(recipe)]


def test_every_block_of_the_table_is_in_the_schema(validator):
    properties = validator.schema["properties"]
    assert set(BLOCK_KEYS) <= set(properties)
    assert set(properties) - set(BLOCK_KEYS) == {"extends", "seed", "losses", "train"}


@pytest.mark.parametrize("path", shipped_recipes(), ids=lambda p: str(p.relative_to(RECIPES)))
def test_shipped_recipes_pass_as_written_and_resolved(validator, path: Path):
    assert errors(validator, yaml.safe_load(path.read_text())) == []
    assert errors(validator, load_recipe(path).resolved()) == []


def test_a_recipe_with_extends_may_leave_blocks_and_names_to_its_base(validator):
    partial = {"extends": "laser:base/cpu_small.yaml", "bottleneck": {"codebook_size": 512}}
    assert errors(validator, partial) == []


def test_a_complete_recipe_must_write_each_required_block_and_its_name(validator):
    recipe = yaml.safe_load(TINY_RECIPE)
    del recipe["encoder"]
    recipe["bottleneck"] = {"codebook_size": 3}
    found = errors(validator, recipe)
    assert ([], "'encoder' is a required property") in found
    assert (["bottleneck"], "'name' is a required property") in found


def test_a_typo_in_a_block_is_reported_in_that_block(validator):
    recipe = yaml.safe_load((RECIPES / "quickstart.yaml").read_text())
    recipe["bottleneck"]["codebok_size"] = 256
    recipe["metrics"] = ["mse", {"name": "psnr", "data_rnage": 2.0}]
    found = errors(validator, recipe)
    assert (
        ["bottleneck"],
        "Additional properties are not allowed ('codebok_size' was unexpected)",
    ) in found
    assert (
        ["metrics", 1],
        "Additional properties are not allowed ('data_rnage' was unexpected)",
    ) in found
    assert len(found) == 2


def test_a_wrong_value_or_unknown_plugin_is_reported_at_its_key(validator):
    recipe = yaml.safe_load(TINY_RECIPE)
    recipe["bottleneck"]["codebook_size"] = 0
    recipe["encoder"]["name"] = "convv"
    recipe["train"]["batch_sise"] = 3
    paths = [path for path, _ in errors(validator, recipe)]
    assert ["bottleneck", "codebook_size"] in paths
    assert ["encoder", "name"] in paths
    assert ["train"] in paths
