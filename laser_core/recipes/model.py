"""Recipes: YAML in, a validated :class:`Recipe` out, or every problem at once with file:line.

Validation runs in two stages: the recipe's own keys against :class:`RecipeModel`, then each
component block against the config model of the plugin its ``name`` selects. That is exactly
the discriminated union ``laser schema`` exports, with our own messages and suggestions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from laser_core.errors import PluginError, Problem, RecipeError, did_you_mean
from laser_core.plugin.registry import Component, Registry, default_registry
from laser_core.recipes.yaml_source import KeyPath, Sourced, apply_overrides, dotted, load_file

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
    recon: ReconKind | dict[ReconKind, Annotated[float, Field(ge=0)]] = Field(
        "l2", description="l1, l2, or a mix such as {l1: 0.8, l2: 0.2}"
    )
    recon_weight: float = Field(1.0, ge=0)
    perceptual: float = Field(0.0, ge=0, description="weight of LPIPS")
    perceptual_net: LpipsNet = "alex"
    perceptual_backbone: BackboneWeights = Field(
        "pretrained", description="random: untrained backbone, NOT LPIPS; for tests only"
    )
    dct: float = Field(0.0, ge=0, description="weight of the multi-resolution DCT loss")
    gradient: float = Field(0.0, ge=0, description="weight of the multi-resolution gradient loss")
    resolutions: int = Field(
        3, ge=1, description="pyramid levels of the dct and gradient losses, each half the last"
    )


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(1000, ge=0, description="optimizer steps")
    lr: float = Field(2e-4, gt=0)
    lr_per_component: dict[Literal["encoder", "bottleneck", "decoder"], float] = Field(
        default_factory=dict, description="learning rate for one component, e.g. a codebook"
    )
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = Field(0, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="cosine floor as a fraction of lr")
    grad_clip: float | None = Field(1.0, gt=0)
    grad_accum: int = Field(1, ge=1)
    precision: Precision | None = Field(
        "no", description="null inherits the `accelerate launch` config"
    )
    log_every: int = Field(10, ge=1)
    eval_every: int = Field(0, ge=0, description="0: validate only before and after training")
    eval_batches: int = Field(4, ge=1)
    checkpoint_every: int = Field(0, ge=0, description="0: checkpoint only at the end")
    keep_checkpoints: int = Field(2, ge=1)
    trackers: list[str | dict[str, Any]] = Field(
        default_factory=list,
        description="Accelerate trackers (log_with names), e.g. [tensorboard, {name: wandb, "
        "mode: online}]; the other keys of a mapping are that tracker's options",
    )

    @field_validator("trackers")
    @classmethod
    def _known_and_installed(cls, value: list[str | dict[str, Any]]) -> list[dict[str, Any]]:
        from laser_core.training.trackers import check_tracker

        return [check_tracker({"name": t} if isinstance(t, str) else t) for t in value]


class RecipeModel(BaseModel):
    """The recipe's own keys. Component blocks are mappings whose ``name`` picks a plugin."""

    model_config = ConfigDict(extra="forbid")
    seed: int = 0
    data: dict[str, Any]
    encoder: dict[str, Any]
    bottleneck: dict[str, Any]
    decoder: dict[str, Any]
    discriminator: dict[str, Any] | None = None
    metrics: list[str | dict[str, Any]] = Field(default_factory=lambda: list(DEFAULT_METRICS))
    losses: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    task: dict[str, Any] | None = None


# Recipe key -> component kind of the blocks under it.
BLOCK_KINDS = {
    "data": "datasets",
    "encoder": "encoders",
    "bottleneck": "bottlenecks",
    "decoder": "decoders",
    "discriminator": "discriminators",
    "metrics": "metrics",
    "task": "tasks",
}


@dataclass
class Block:
    """A component block of a recipe: the chosen component and its validated config."""

    component: Component
    config: BaseModel

    @property
    def name(self) -> str:
        return self.component.name

    def resolved(self) -> dict[str, Any]:
        return {"name": self.component.name, **self.config.model_dump(mode="json")}


@dataclass
class Recipe:
    source: str
    seed: int
    data: Block
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

    def resolved(self) -> dict[str, Any]:
        """The recipe with every default filled in: what a run directory records."""
        out: dict[str, Any] = {"seed": self.seed}
        for key in ("data", "encoder", "bottleneck", "decoder", "discriminator", "task"):
            block = getattr(self, key)
            if block is not None:
                out[key] = block.resolved()
        out["metrics"] = [m.resolved() for m in self.metrics]
        out["losses"] = self.losses.model_dump(mode="json")
        out["train"] = self.train.model_dump(mode="json")
        return out


def load_recipe(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), registry: Registry | None = None
) -> Recipe:
    """Load, merge ``extends``, apply overrides, validate. Raises RecipeError listing every
    problem with its file:line."""
    source = apply_overrides(load_file(Path(path)), list(overrides))
    return validate(source, str(path), registry or default_registry())


def validate(source: Sourced, name: str, registry: Registry) -> Recipe:
    problems: list[Problem] = []
    try:
        top = RecipeModel.model_validate(source.data)
    except ValidationError as error:
        problems += _problems(error, (), source, RecipeModel)
        top = None

    blocks: dict[str, Any] = {}
    for key, kind in BLOCK_KINDS.items():
        raw = source.data.get(key, list(DEFAULT_METRICS) if key == "metrics" else None)
        if key == "metrics" and isinstance(raw, list):
            entries = [{"name": m} if isinstance(m, str) else m for m in raw]
            blocks[key] = [
                _block(e, (key, i), kind, source, registry, problems)
                for i, e in enumerate(entries)
                if isinstance(e, dict)
            ]
            problems += _repeated_metrics(entries, source)
        elif isinstance(raw, dict):
            blocks[key] = _block(raw, (key,), kind, source, registry, problems)
    if problems or top is None:
        raise RecipeError(problems)
    return Recipe(
        source=name,
        seed=top.seed,
        data=blocks["data"],
        encoder=blocks["encoder"],
        bottleneck=blocks["bottleneck"],
        decoder=blocks["decoder"],
        discriminator=blocks.get("discriminator"),
        metrics=blocks["metrics"],
        losses=top.losses,
        train=top.train,
        task=blocks.get("task"),
    )


def _repeated_metrics(entries: list[Any], source: Sourced) -> list[Problem]:
    """Two blocks of one metric would write the same keys in metrics.json, one hiding the other."""
    seen: set[Any] = set()
    problems = []
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        if name in seen:
            message = f"metric '{name}' is listed twice; its results would overwrite each other"
            problems.append(Problem(source.origin(("metrics", index)), f"metrics.{index}", message))
        seen.add(name)
    return problems


def _block(
    raw: dict[str, Any],
    path: KeyPath,
    kind: str,
    source: Sourced,
    registry: Registry,
    problems: list[Problem],
) -> Block | None:
    where = source.origin(path)
    name = raw.get("name")
    if not isinstance(name, str):
        available = ", ".join(sorted(registry.components[kind])) or "none installed"
        problems.append(Problem(where, dotted(path), f"needs 'name:' (one of: {available})"))
        return None
    try:
        component = registry.get(kind, name)
    except PluginError as error:
        problems.append(
            Problem(source.origin((*path, "name")), dotted((*path, "name")), str(error))
        )
        return None
    params = {k: v for k, v in raw.items() if k != "name"}
    try:
        return Block(component, component.config.model_validate(params))
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
    for item in error.errors():
        loc = tuple(p for p in item["loc"] if not _is_union_branch(p))
        path = (*prefix, *loc)
        key = dotted(path)
        if item["type"] == "extra_forbidden":
            owner = f"{component.kind[:-1]} '{component.name}'" if component else "a recipe"
            fields = _fields_at(model, loc[:-1])
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
