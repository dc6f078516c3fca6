"""Sweep definitions: axes from the command line, zip groups, sweep files validated like
recipes (file:line), every combination checked before anything runs, readable run names."""

from __future__ import annotations

from pathlib import Path

import pytest

from laser_core.campaigns.axes import Axis, split_arguments, split_values
from laser_core.campaigns.definition import from_arguments, load_sweep_file
from laser_core.errors import RecipeError
from tests.helpers import TINY_RECIPE


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("1,2,3", ["1", "2", "3"]),
        ("[1,2]", ["[1,2]"]),
        ("[1,2],[3,4]", ["[1,2]", "[3,4]"]),
        ("{a: 1, b: 2}", ["{a: 1, b: 2}"]),
        ("{name: rq, levels: [2, 4]},{name: vq}", ["{name: rq, levels: [2, 4]}", "{name: vq}"]),
        ("'a,b'", ["'a,b'"]),
        ('"x,y",z', ['"x,y"', "z"]),
        ("1e-4, 3e-4", ["1e-4", "3e-4"]),
    ],
)
def test_commas_split_values_only_outside_brackets_braces_and_quotes(text, values):
    assert split_values(text) == values


def test_arguments_split_into_axes_and_fixed_overrides():
    axes, overrides = split_arguments(
        ["bottleneck.sparsity=1,2,4", "encoder.channels=[8,16]", "'data={a: 1, b: 2}'", "~task"]
    )
    assert axes == [Axis("bottleneck.sparsity", ("1", "2", "4"))]
    assert overrides == ["encoder.channels=[8,16]", "'data={a: 1, b: 2}'", "~task"]


def test_grid_axes_cross_and_zipped_axes_advance_together(write_recipe):
    recipe = write_recipe(TINY_RECIPE)
    sweep = from_arguments(
        recipe,
        [Axis("bottleneck.codebook_size", ("8", "16"))],
        [[Axis("train.lr", ("1e-3", "3e-3", "1e-2")), Axis("seed", ("0", "1", "2"))]],
        ["train.steps=2"],
    )
    runs = sweep.runs()
    assert [r.name for r in runs] == [
        "codebook_size=8,lr=1e-3,seed=0",
        "codebook_size=8,lr=3e-3,seed=1",
        "codebook_size=8,lr=1e-2,seed=2",
        "codebook_size=16,lr=1e-3,seed=0",
        "codebook_size=16,lr=3e-3,seed=1",
        "codebook_size=16,lr=1e-2,seed=2",
    ]
    assert runs[4].overrides == (
        "train.steps=2",
        "bottleneck.codebook_size=16",
        "train.lr=3e-3",
        "seed=1",
    )
    assert {r.recipe for r in runs} == {recipe.resolve()}


def test_zipped_axes_of_unequal_length_are_refused(write_recipe):
    with pytest.raises(RecipeError, match="zipped axes need equal lengths"):
        from_arguments(
            write_recipe(TINY_RECIPE),
            [],
            [[Axis("seed", ("0", "1")), Axis("train.lr", ("1",))]],
            [],
        )


def test_a_sweep_file_reads_recipe_axes_zip_and_executor(write_recipe, tmp_path):
    write_recipe(TINY_RECIPE, "recipes/tiny.yaml")
    path = write_recipe(
        """
        recipe: recipes/tiny.yaml
        axes:
          bottleneck: ['{name: vq, codebook_size: 8}', {name: rq, levels: 2, codebook_size: 8}]
        zip: [{train.lr: [1.0e-3, 3.0e-3], train.steps: [2, 3]}]
        overrides: [seed=1]
        executor: {name: submitit, partition: gpu, gpus_per_job: 2, time_min: 90}
        """,
        "sweeps/s.yaml",
    )
    with pytest.raises(RecipeError):  # the recipe is relative to the sweep file
        load_sweep_file(path)
    path.write_text(path.read_text().replace("recipes/tiny.yaml", "../recipes/tiny.yaml"))
    sweep = load_sweep_file(path, {"jobs": 3})
    names = [r.name for r in sweep.validate()]
    assert names == [
        "bottleneck=name-vq-codebook_size-8,lr=0.001,steps=2",
        "bottleneck=name-vq-codebook_size-8,lr=0.003,steps=3",
        "bottleneck=name-rq-levels-2-codebook_size-8,lr=0.001,steps=2",
        "bottleneck=name-rq-levels-2-codebook_size-8,lr=0.003,steps=3",
    ]
    assert (
        sweep.runs()[2].overrides[1] == 'bottleneck={"name": "rq", "levels": 2, "codebook_size": 8}'
    )
    assert sweep.executor.partition == "gpu" and sweep.executor.gpus_per_job == 2
    assert sweep.executor.jobs == 3 and sweep.recipes == ((tmp_path / "recipes/tiny.yaml"),)


def test_sweep_file_problems_are_all_reported_with_file_and_line(write_recipe):
    write_recipe(TINY_RECIPE, "tiny.yaml")
    path = write_recipe(
        """
        recipe: tiny.yaml
        axes: {seed: [0, 1]}
        zip: [{train.lr: [1, 2], seed: [3]}]
        executor: {name: slurm, partition: gpu, gpu_per_job: 2}
        """,
        "s.yaml",
    )
    with pytest.raises(RecipeError) as error:
        load_sweep_file(path)
    text = str(error.value)
    where = Path(path).resolve()
    assert f"{where}:4: executor.name: Input should be 'local' or 'submitit'" in text
    assert f"{where}:4: executor.gpu_per_job: unknown key for executor" in text
    path.write_text(path.read_text().replace("name: slurm, partition: gpu, gpu_per_job: 2", ""))
    with pytest.raises(RecipeError, match=rf"{where}:3: zip.0: zipped axes need equal lengths"):
        load_sweep_file(path)


def test_every_combination_is_validated_first_and_located_in_the_sweep_file(write_recipe):
    write_recipe(TINY_RECIPE, "tiny.yaml")
    path = write_recipe(
        """
        recipe: tiny.yaml
        axes:
          bottleneck.codebook_size: [8, 16]
          train.steps:
            - 2
            - -1
        """,
        "s.yaml",
    )
    with pytest.raises(RecipeError) as error:
        load_sweep_file(path).validate()
    problems = error.value.problems
    assert [(p.where, p.key) for p in problems] == [(f"{path.resolve()}:6", "train.steps")]
    assert "greater than or equal to 0" in problems[0].message
    assert "(run codebook_size=8,steps=-1 and 1 more)" in problems[0].message


def test_a_recipe_list_is_an_axis_named_by_the_recipes(write_recipe):
    write_recipe(TINY_RECIPE, "a.yaml")
    write_recipe(TINY_RECIPE.replace("codebook_size: 16", "codebook_size: 8"), "b.yaml")
    path = write_recipe("recipe: [a.yaml, b.yaml]\naxes: {seed: [0, 1]}\n", "s.yaml")
    runs = load_sweep_file(path).validate()
    assert [r.name for r in runs] == ["a,seed=0", "a,seed=1", "b,seed=0", "b,seed=1"]
    assert runs[2].recipe.name == "b.yaml" and runs[2].overrides == ("seed=0",)
