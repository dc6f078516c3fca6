"""What a sweep is: a recipe, axes crossed as a grid, paired (zip) axes, fixed overrides and
executor settings; from the command line or a sweep file, and expanded to named runs.

A sweep file is YAML, validated like a recipe (every problem at once, with file:line)::

    recipe: ../compare/pixels-omp.yaml       # relative to this file; a list is an axis
    axes: {bottleneck.sparsity: [1, 2, 4, 8], seed: [0, 1]}
    zip: [{train.lr: [1e-3, 3e-3], train.steps: [800, 400]}]   # advance together
    overrides: [train.eval_every=100]
    executor: {name: submitit, partition: gpu, gpus_per_job: 1, time_min: 120}

An axis value that is a string is read as on the command line (``'{name: rq, levels: 4}'``
is a mapping); other YAML values stand for themselves.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from laser_core.campaigns.axes import Axis
from laser_core.errors import Problem, RecipeError
from laser_core.recipes.model import load_recipe
from laser_core.recipes.strict_yaml import dotted
from laser_core.recipes.yaml_source import Sourced, load_file

RECIPE_AXIS = "recipe"


class SweepFileError(RecipeError):
    """Problems of a sweep file or of sweep options, each located; reported like a recipe's."""

    def __init__(self, problems: list[Problem]):
        super().__init__(problems)
        self.args = ("invalid sweep:\n" + "\n".join(f"  {p}" for p in problems),)


class ExecutorConfig(BaseModel):
    """Where and how the runs execute. ``jobs``: runs at a time (local) or the job array's
    parallelism (SLURM). The SLURM keys apply to ``submitit`` only."""

    model_config = ConfigDict(extra="forbid")
    name: Literal["local", "submitit"] = "local"
    jobs: int = Field(1, ge=1)
    gpus_per_job: int = Field(0, ge=0, description="0: CPU; >1: accelerate launch per job")
    cluster: Literal["slurm", "local", "debug"] | None = Field(
        None, description="submitit's cluster; null: SLURM where sbatch exists, else local"
    )
    partition: str | None = None
    account: str | None = None
    time_min: int = Field(60, ge=1)
    cpus_per_job: int | None = Field(None, ge=1)
    mem_gb: float | None = Field(None, gt=0)
    setup: list[str] = Field(default_factory=list, description="shell lines run before a job")


class SweepFileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recipe: str | list[str]
    axes: dict[str, list[Any]] = Field(default_factory=dict)
    zip: list[dict[str, list[Any]]] = Field(default_factory=list)
    overrides: list[str] = Field(default_factory=list)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)


@dataclass(frozen=True)
class PlannedRun:
    """One combination: its directory name, recipe file and overrides."""

    name: str
    recipe: Path
    overrides: tuple[str, ...]


@dataclass
class Sweep:
    recipes: tuple[Path, ...]  # one, or the values of the recipe axis
    grid: list[Axis] = field(default_factory=list)
    zipped: list[list[Axis]] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    origins: dict[str, str] = field(default_factory=dict)  # override text -> file:line

    def to_file(self) -> dict[str, Any]:
        """The sweep as a sweep file (absolute recipe paths), as the sweep directory keeps it."""
        recipes = [str(p) for p in self.recipes]
        return {
            "recipe": recipes[0] if len(recipes) == 1 else recipes,
            "axes": {axis.key: list(axis.values) for axis in self.grid},
            "zip": [{axis.key: list(axis.values) for axis in group} for group in self.zipped],
            "overrides": list(self.overrides),
            "executor": self.executor.model_dump(mode="json"),
        }

    def runs(self) -> list[PlannedRun]:
        """Every combination, grid axes crossed with zip groups, in a stable order."""
        groups = [[a] for a in self.grid] + self.zipped
        if len(self.recipes) > 1:
            recipe_axis = Axis(RECIPE_AXIS, tuple(str(p) for p in self.recipes))
            groups.insert(0, [recipe_axis])
        rows_per_group = [
            [tuple((a.key, a.values[i]) for a in group) for i in range(len(group[0].values))]
            for group in groups
        ]
        planned = []
        for combination in itertools.product(*rows_per_group):
            chosen = [pair for row in combination for pair in row]
            recipe = next((Path(v) for k, v in chosen if k == RECIPE_AXIS), self.recipes[0])
            varying = [(k, v) for k, v in chosen if k != RECIPE_AXIS]
            overrides = (*self.overrides, *(f"{k}={v}" for k, v in varying))
            planned.append(PlannedRun(_name(chosen), recipe, overrides))
        return _unique(planned)

    def validate(self) -> list[PlannedRun]:
        """Load every combination's recipe; raise one RecipeError listing every problem, each
        located at the sweep file's line where it can be."""
        runs = self.runs()
        found: dict[tuple[str, str, str], list[str]] = {}  # problem -> runs that have it
        for run in runs:
            try:
                load_recipe(run.recipe, run.overrides)
            except RecipeError as error:
                for p in error.problems:
                    text = p.where.removeprefix("override '").removesuffix("'")
                    where = self.origins.get(text, p.where)
                    found.setdefault((where, p.key, p.message), []).append(run.name)
        if found:
            raise RecipeError(
                [
                    Problem(where, key, f"{message} (run {_some(names)})")
                    for (where, key, message), names in found.items()
                ]
            )
        return runs


def from_arguments(
    recipe: Path, axes: list[Axis], zipped: list[list[Axis]], overrides: list[str], **executor: Any
) -> Sweep:
    """A sweep from ``laser sweep``'s command line."""
    problems = [
        Problem(f"--zip {' '.join(f'{a.key}=...' for a in group)}", group[0].key, message)
        for group in zipped
        for message in [_zip_problem(group)]
        if message
    ]
    if problems:
        raise SweepFileError(problems)
    config = executor_config({}, {k: v for k, v in executor.items() if v is not None})
    return Sweep((recipe.resolve(),), axes, zipped, overrides, config)


def executor_config(base: dict[str, Any], options: dict[str, Any]) -> ExecutorConfig:
    """The executor settings, command-line ``options`` over ``base``, validated."""
    try:
        return ExecutorConfig.model_validate({**base, **options})
    except ValidationError as error:
        problems = [
            Problem("command line", "--" + "-".join(map(str, e["loc"])).replace("_", "-"), e["msg"])
            for e in error.errors()
        ]
        raise SweepFileError(problems) from None


def load_sweep_file(path: Path, executor_overrides: dict[str, Any] | None = None) -> Sweep:
    """Read and validate a sweep file; command-line executor options take precedence."""
    source = load_file(path)
    try:
        model = SweepFileModel.model_validate(source.data)
    except ValidationError as error:
        raise SweepFileError(_problems(error, source)) from None
    problems = []
    recipes = [model.recipe] if isinstance(model.recipe, str) else model.recipe
    base = path.resolve().parent
    resolved = []
    for index, name in enumerate(recipes):
        recipe = Path(name) if Path(name).is_absolute() else base / name
        if not recipe.is_file():
            key = ("recipe",) if isinstance(model.recipe, str) else ("recipe", index)
            problems.append(Problem(source.origin(key), dotted(key), f"no such recipe {recipe}"))
        resolved.append(recipe.resolve())
    origins = {text: source.origin(("overrides", i)) for i, text in enumerate(model.overrides)}
    grid = [
        _axis(key, values, ("axes", key), source, origins) for key, values in model.axes.items()
    ]
    zipped = []
    for index, group in enumerate(model.zip):
        axes = [_axis(k, v, ("zip", index, k), source, origins) for k, v in group.items()]
        message = _zip_problem(axes)
        if message:
            problems.append(Problem(source.origin(("zip", index)), f"zip.{index}", message))
        zipped.append(axes)
    for key, values in model.axes.items():
        if not values:
            problems.append(Problem(source.origin(("axes", key)), f"axes.{key}", "no values"))
    if problems:
        raise SweepFileError(problems)
    executor = executor_config(model.executor.model_dump(), executor_overrides or {})
    return Sweep(tuple(resolved), grid, zipped, model.overrides, executor, origins)


def _axis(key: str, values: list[Any], path: tuple, source: Sourced, origins: dict) -> Axis:
    texts = tuple(v if isinstance(v, str) else json.dumps(v) for v in values)
    for index, text in enumerate(texts):
        origins[f"{key}={text}"] = source.origin((*path, index))
    return Axis(key, texts)


def _zip_problem(group: list[Axis]) -> str | None:
    lengths = {axis.key: len(axis.values) for axis in group}
    if len(set(lengths.values())) > 1:
        return f"zipped axes need equal lengths; got {lengths}"
    return None


def _problems(error: ValidationError, source: Sourced) -> list[Problem]:
    problems = []
    for item in error.errors():
        path = tuple(p for p in item["loc"] if p not in {"str", "list[str]"})
        if item["type"] == "extra_forbidden":
            owner = "executor" if path[:1] == ("executor",) else "a sweep file"
            fields = (
                ExecutorConfig.model_fields if owner == "executor" else SweepFileModel.model_fields
            )
            message = f"unknown key for {owner} (valid keys: {', '.join(fields)})"
        elif item["type"] == "missing":
            message = "required key is missing"
        else:
            message = f"{item['msg']} (got {item.get('input')!r})"
        problems.append(Problem(source.origin(path), dotted(path), message))
    return problems


def _name(chosen: list[tuple[str, str]]) -> str:
    """A readable directory name from the varying values, e.g. ``sparsity=4,seed=1``."""
    if not chosen:
        return "run"
    shorts = [k.rsplit(".", 1)[-1] for k, _ in chosen]
    parts = []
    for (key, value), short in zip(chosen, shorts, strict=True):
        label = key if shorts.count(short) > 1 else short
        if key == RECIPE_AXIS:
            parts.append(Path(value).stem)
            continue
        parts.append(f"{label}={_clean(value)}")
    return ",".join(parts)


def _clean(value: str) -> str:
    try:
        text = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        text = value
    if isinstance(text, dict):
        text = "-".join(f"{k}-{v}" for k, v in text.items())
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "-", str(text)).rstrip("-")
    cleaned = cleaned if str(text).startswith("-") else cleaned.lstrip("-")
    return cleaned[:60] or "empty"


def _some(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"


def _unique(runs: list[PlannedRun]) -> list[PlannedRun]:
    seen: dict[str, int] = {}
    out = []
    for run in runs:
        count = seen.get(run.name, 0)
        seen[run.name] = count + 1
        name = run.name if count == 0 else f"{run.name}-{count + 1}"
        out.append(PlannedRun(name, run.recipe, run.overrides))
    return out
