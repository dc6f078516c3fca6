"""Recipes: YAML in, a validated :class:`Recipe` out, or every problem at once with file:line.

Validation runs in two stages: the recipe's own keys against :class:`RecipeSettings`, then each
component block against the config model of the plugin its ``name`` selects. That is exactly
the discriminated union ``laser schema`` exports, with our own messages and suggestions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from laser_core.errors import PluginError, Problem, RecipeError, did_you_mean
from laser_core.plugin.blocks import BLOCK_KEYS, BLOCKS, BlockSpec, singular
from laser_core.plugin.registry import Component, Provider, Registry, default_registry
from laser_core.plugin.types import (
    AdamBeta,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Seed,
    UnitInterval,
)
from laser_core.recipes.strict_yaml import KeyPath, dotted
from laser_core.recipes.yaml_source import Sourced, apply_overrides, load_file

Precision = Literal["no", "fp16", "bf16"]
ReconKind = Literal["l1", "l2"]
LpipsNet = Literal["alex", "vgg", "squeeze"]
BackboneWeights = Literal["pretrained", "random"]
DEFAULT_METRICS = ("mse", "psnr")


class LossConfig(BaseModel):
    """Weights of the generator's image losses, each logged under its own key in
    metrics.jsonl; the bottleneck adds its own loss unweighted, a discriminator block its
    adversarial one. A weight of 0 turns a loss off."""

    model_config = ConfigDict(extra="forbid")
    recon: ReconKind | Annotated[dict[ReconKind, NonNegativeFloat], Field(min_length=1)] = Field(
        "l2", description="l1, l2, or a mix such as {l1: 0.8, l2: 0.2}"
    )
    recon_weight: NonNegativeFloat = 1.0
    perceptual: NonNegativeFloat = Field(0.0, description="weight of LPIPS")
    perceptual_net: LpipsNet = "alex"
    perceptual_backbone: BackboneWeights = Field(
        "pretrained", description="random: untrained backbone, NOT LPIPS; for tests only"
    )
    dct: NonNegativeFloat = Field(0.0, description="weight of the multi-resolution DCT loss")
    gradient: NonNegativeFloat = Field(
        0.0, description="weight of the multi-resolution gradient loss"
    )
    resolutions: PositiveInt = Field(
        3, description="pyramid levels of the dct and gradient losses, each half the last"
    )
    rate: NonNegativeFloat = Field(
        0.0,
        description="lambda of rate-distortion training: weight of the codes' bits per pixel "
        "under the bottleneck's entropy model (factorized, hyperprior); 0: no rate term",
    )


class InitFrom(BaseModel):
    """Weights to start from: another run directory, trained or imported."""

    model_config = ConfigDict(extra="forbid")
    run: str = Field(description="run directory whose model.safetensors to load")
    strict: bool = Field(
        True, description="every weight must fit; false: load those whose name and shape match"
    )


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: NonNegativeInt = Field(1000, description="optimizer steps")
    lr: PositiveFloat = 2e-4
    lr_per_component: dict[Literal["encoder", "bottleneck", "decoder"], PositiveFloat] = Field(
        default_factory=dict, description="learning rate for one component, e.g. a codebook"
    )
    weight_decay: NonNegativeFloat = 0.0
    betas: tuple[AdamBeta, AdamBeta] = (0.9, 0.99)
    warmup_steps: NonNegativeInt = 0
    min_lr_ratio: UnitInterval = Field(0.1, description="cosine floor as a fraction of lr")
    grad_clip: PositiveFloat | None = 1.0
    grad_accum: PositiveInt = 1
    precision: Precision | None = Field(
        "no", description="null inherits the `accelerate launch` config"
    )
    log_every: PositiveInt = 10
    eval_every: NonNegativeInt = Field(0, description="0: validate only before and after training")
    eval_batches: PositiveInt = 4
    checkpoint_every: NonNegativeInt = Field(0, description="0: checkpoint only at the end")
    keep_checkpoints: PositiveInt = 2
    compile: bool = Field(
        False, description="torch.compile the encoder and decoder; the first steps compile"
    )
    channels_last: bool = Field(
        False, description="channels-last memory format for the model and images (GPU convs)"
    )
    deterministic: bool = Field(
        False, description="deterministic GPU kernels, so a resumed GPU run is exact; slower"
    )
    init_from: InitFrom | None = Field(
        None, description="start from a run's weights: a run directory, or {run: DIR, strict}"
    )
    freeze: list[Literal["encoder", "bottleneck", "decoder"]] = Field(
        [], description="parts whose weights stay fixed (no gradient, not in the optimizer)"
    )

    @field_validator("init_from", mode="before")
    @classmethod
    def _run_directory_alone(cls, value: Any) -> Any:
        return {"run": value} if isinstance(value, str) else value

    @field_validator("precision", mode="before")
    @classmethod
    def _yaml_no_is_no(cls, value: Any) -> Any:
        """YAML 1.1 reads an unquoted ``no`` (``train.precision=no``) as false."""
        return "no" if value is False else value

    trackers: list[str | dict[str, Any]] = Field(
        default_factory=list,
        description="Accelerate trackers (log_with names), e.g. [tensorboard, {name: wandb, "
        "mode: online}]; the other keys of a mapping are that tracker's options",
    )

    @field_validator("trackers")
    @classmethod
    def _known_and_installed(cls, value: list[str | dict[str, Any]]) -> list[dict[str, Any]]:
        from laser_core.recipes.trackers import check_tracker

        return [check_tracker({"name": t} if isinstance(t, str) else t) for t in value]


class RecipeSettings(BaseModel):
    """The recipe's own keys; each component block (blocks.BLOCKS) is checked by the config
    of the plugin its ``name`` selects."""

    model_config = ConfigDict(extra="forbid")
    seed: Seed = 0
    losses: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)


@dataclass
class Block:
    """A component block of a recipe: the chosen component and its validated config, and
    where the recipe writes it (``file:line`` and key) for errors found when it is built."""

    component: Component
    config: BaseModel
    where: str = ""
    key: str = ""

    @property
    def name(self) -> str:
        return self.component.name

    def resolved(self) -> dict[str, Any]:
        return {"name": self.component.reference, **self.config.model_dump(mode="json")}


@dataclass
class Recipe:
    """A validated recipe. Its block attributes are those of blocks.BLOCKS: one Block, None
    for an absent optional block, a list for a list block."""

    source: str
    seed: int
    data: Block | None
    """None only in a run directory whose model was imported without a dataset."""
    encoder: Block
    bottleneck: Block
    decoder: Block
    discriminator: Block | None
    metrics: list[Block]
    losses: LossConfig
    train: TrainConfig
    task: Block | None

    @property
    def stem(self) -> str:
        return Path(self.source).stem

    def map_blocks(self, fn: Callable[[Block], Any]) -> dict[str, Any]:
        """``fn`` of every block present, by recipe key; a list block gives a list."""
        out: dict[str, Any] = {}
        for spec in BLOCKS:
            value = getattr(self, spec.key)
            if spec.presence == "list":
                out[spec.key] = [fn(block) for block in value]
            elif value is not None:
                out[spec.key] = fn(value)
        return out

    def resolved(self) -> dict[str, Any]:
        """The recipe with every default filled in: what a run directory records."""
        return {
            "seed": self.seed,
            **self.map_blocks(Block.resolved),
            "losses": self.losses.model_dump(mode="json"),
            "train": self.train.model_dump(mode="json"),
        }


Pins = dict[str, tuple[str, Provider]]
"""Block key ("bottleneck", "metrics.0") -> (component name, the provider that supplied it)."""


def load_recipe(
    path: str | os.PathLike[str],
    overrides: list[str] | tuple[str, ...] = (),
    registry: Registry | None = None,
    pinned: Pins | None = None,
    data_optional: bool = False,
) -> Recipe:
    """Load, merge ``extends``, apply overrides, validate. Raises RecipeError listing every
    problem with its file:line. ``pinned`` resolves blocks that still name the recorded
    component to the recorded provider (a run directory's plugins.json); ``data_optional``
    accepts a recipe without a data block (a run directory's, whose model was imported)."""
    source = apply_overrides(load_file(Path(path)), list(overrides))
    return validate(source, str(path), registry or default_registry(), pinned, data_optional)


def validate(
    source: Sourced,
    name: str,
    registry: Registry,
    pinned: Pins | None = None,
    data_optional: bool = False,
) -> Recipe:
    problems: list[Problem] = []
    own = {k: v for k, v in source.data.items() if k not in BLOCK_KEYS}
    try:
        settings = RecipeSettings.model_validate(own)
    except ValidationError as error:
        problems += _problems(error, (), source, RecipeSettings)
        settings = None
    pinned = pinned or {}
    blocks = {
        spec.key: None
        if spec.key == "data" and data_optional and source.data.get("data") is None
        else _blocks_of(spec, source, registry, problems, pinned)
        for spec in BLOCKS
    }
    if problems or settings is None:
        raise RecipeError(problems)
    return Recipe(
        source=name, seed=settings.seed, losses=settings.losses, train=settings.train, **blocks
    )


def _blocks_of(
    spec: BlockSpec, source: Sourced, registry: Registry, problems: list[Problem], pinned: Pins
) -> Block | list[Block] | None:
    """The validated block(s) under ``spec.key``; problems are appended, not raised."""
    path = (spec.key,)
    raw = source.data.get(spec.key)
    if spec.presence == "list":
        raw = list(DEFAULT_METRICS) if spec.key not in source.data else raw
        if not isinstance(raw, list):
            message = f"a list of {spec.singular} names or blocks with 'name:' (got {raw!r})"
            problems.append(Problem(source.origin(path), spec.key, message))
            return []
        entries = [{"name": item} if isinstance(item, str) else item for item in raw]
        problems += _repeated(spec, entries, source)
        return [
            _block(entry, (*path, i), spec, source, registry, problems, pinned)
            for i, entry in enumerate(entries)
        ]
    if raw is None and spec.presence == "optional":
        return None
    if raw is None:
        message = f"required block is missing; add '{spec.key}: {{name: ...}}'"
        problems.append(Problem(source.origin(path), spec.key, message))
        return None
    return _block(raw, path, spec, source, registry, problems, pinned)


def _repeated(spec: BlockSpec, entries: list[Any], source: Sourced) -> list[Problem]:
    """Two blocks of one metric would write the same keys in metrics.json, one hiding the other."""
    seen: set[str] = set()
    problems = []
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        if name in seen:
            message = (
                f"{spec.singular} '{name}' is listed twice; its results would overwrite each other"
            )
            path = (spec.key, index)
            problems.append(Problem(source.origin(path), dotted(path), message))
        seen.add(name)
    return problems


def _block(
    raw: Any,
    path: KeyPath,
    spec: BlockSpec,
    source: Sourced,
    registry: Registry,
    problems: list[Problem],
    pinned: Pins,
) -> Block | None:
    where = source.origin(path)
    kind = spec.kind
    if not isinstance(raw, dict):
        message = f"a {spec.singular} block is a mapping with 'name:' (got {raw!r})"
        problems.append(Problem(where, dotted(path), message))
        return None
    name = raw.get("name")
    if not isinstance(name, str):
        available = ", ".join(sorted(registry.components[kind])) or "none installed"
        problems.append(Problem(where, dotted(path), f"needs 'name:' (one of: {available})"))
        return None
    recorded, provider = pinned.get(dotted(path), (None, None))
    try:
        pin = provider if name.rpartition(":")[2] == recorded else None  # not overridden
        component = registry.get(kind, name, pinned=pin)
    except PluginError as error:
        problems.append(
            Problem(source.origin((*path, "name")), dotted((*path, "name")), str(error))
        )
        return None
    params = {k: v for k, v in raw.items() if k != "name"}
    try:
        return Block(component, component.config.model_validate(params), where, dotted(path))
    except ValidationError as error:
        problems += _problems(error, path, source, component.config, component)
        return None


def _problems(
    error: ValidationError,
    prefix: KeyPath,
    source: Sourced,
    model: type[BaseModel],
    component: Component | None = None,
) -> list[Problem]:
    """Turn pydantic's errors into located problems with suggestions."""
    problems = []
    for item in _without_mismatched_branches(error.errors()):
        loc = tuple(p for p in item["loc"] if not _is_union_branch(p))
        path = (*prefix, *loc)
        key = dotted(path)
        if item["type"] == "extra_forbidden":
            owner = f"{singular(component.kind)} '{component.name}'" if component else "a recipe"
            fields = _fields_at(model, loc[:-1])
            if model is RecipeSettings and len(loc) == 1:
                fields += [*BLOCK_KEYS, "extends"]
            message = f"unknown key for {owner}{did_you_mean(str(loc[-1]), fields)}"
            if fields:
                message += f" (valid keys: {', '.join(sorted(fields))})"
        elif item["type"] == "missing":
            message = "required key is missing"
        else:
            got = item.get("input")
            message = f"{item['msg']} (got {got!r})" if not isinstance(got, dict) else item["msg"]
        problems.append(Problem(source.origin(path), key, message))
    return problems


def _without_mismatched_branches(items: list[Any]) -> list[Any]:
    """pydantic checks a union's value against every branch; once one branch got past the
    value's type (``recon: {l1: .inf}`` is a mapping, just with a wrong weight, or an error
    lies deeper inside it), that the value is not one of the others ("should be 'l1' or
    'l2'") only misleads."""

    def stripped(item: Any) -> tuple:
        return tuple(p for p in item["loc"] if not _is_union_branch(p))

    def mismatch(item: Any) -> bool:
        return item["type"] in ("literal_error", "enum") or item["type"].endswith("_type")

    def superseded(item: Any) -> bool:
        here = stripped(item)
        return mismatch(item) and any(
            other is not item
            and (not mismatch(other) or len(stripped(other)) > len(here))
            and stripped(other)[: len(here)] == here
            and other["loc"][: len(item["loc"])] != item["loc"]
            for other in items
        )

    return [item for item in items if not superseded(item)]


def _is_union_branch(part: str | int) -> bool:
    # pydantic inserts the branch type into locs of union members, e.g. 'str' or 'dict[str,any]'
    return isinstance(part, str) and (part in {"str", "int", "float"} or "[" in part)


def _fields_at(model: type[BaseModel], loc: KeyPath) -> list[str]:
    """Field names of the (nested) model at ``loc``, for suggestions."""
    for part in loc:
        info = model.model_fields.get(str(part))
        annotation = info.annotation if info else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
