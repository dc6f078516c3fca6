"""Recipes that travel: LASER's bases ship in the package as `laser:base/...`, a plugin package
ships its own as `package:path`, so a recipe copied anywhere validates unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from laser_core.errors import RecipeError
from laser_core.recipes.model import load_recipe
from tests.helpers import RECIPES, TINY_RECIPE, shipped_recipes


@pytest.mark.parametrize("path", shipped_recipes(), ids=lambda p: str(p.relative_to(RECIPES)))
def test_a_shipped_recipe_copied_anywhere_validates_unchanged(path: Path, tmp_path):
    copy = tmp_path / "elsewhere" / path.name
    copy.parent.mkdir()
    shutil.copy(path, copy)
    assert load_recipe(copy).resolved() == load_recipe(path).resolved()


def test_a_plugin_package_ships_bases_that_extend_each_other(tmp_path, monkeypatch, write_recipe):
    bases = tmp_path / "site" / "my_plugin" / "recipes"
    bases.mkdir(parents=True)
    (bases.parent / "__init__.py").write_text("")
    (bases / "small.yaml").write_text("extends: [laser:base/cpu_small.yaml]\ntrain: {steps: 7}\n")
    (bases / "tiny.yaml").write_text("extends: small.yaml\ntrain: {log_every: 3}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    text = TINY_RECIPE.replace("seed: 0", "extends: [my_plugin:recipes/tiny.yaml]")
    recipe = load_recipe(write_recipe(text.replace("train: {steps: 6, ", "train: {")))
    assert recipe.train.steps == 7 and recipe.train.log_every == 1  # child wins over bases
    assert recipe.train.warmup_steps == 20  # from laser:base/cpu_small.yaml


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("no_such_package:base.yaml", "no installed package 'no_such_package'; install the plugin"),
        (
            "laser:base/cpu_big.yaml",
            "package 'laser_core.recipes' has no file 'base/cpu_big.yaml'; it ships",
        ),
        ("laser:", "package 'laser_core.recipes' has no file ''"),
    ],
)
def test_a_missing_package_or_file_says_what_to_do(write_recipe, reference, expected):
    path = write_recipe(TINY_RECIPE.replace("seed: 0", f"extends: ['{reference}']"))
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert f"{path.resolve()}:1: extends.0: '{reference}': {expected}" in str(caught.value)
    if "it ships" in expected:
        assert "laser:base/cpu_small.yaml, laser:base/pixels.yaml" in str(caught.value)


def test_bases_are_package_data():
    pyproject = (RECIPES.parent / "pyproject.toml").read_text()
    assert '"recipes/base/*.yaml"' in pyproject
    assert not list(RECIPES.rglob("base/*.yaml")), "bases live in laser_core/recipes/base"
