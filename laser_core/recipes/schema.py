"""The recipe's JSON Schema for the plugins installed: each component block is a union of the
plugins' configs discriminated by ``name``, so YAML editors complete and check every key."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from laser_core.errors import PluginError
from laser_core.plugin.registry import Component, Registry
from laser_core.recipes.model import BLOCK_KINDS, LossConfig, RecipeModel, TrainConfig


def _tags(component: Component, registry: Registry) -> tuple[str, ...]:
    """The names a recipe may use: bare when it picks this component (unique, or the
    built-in of that name), and always plugin-qualified."""
    try:
        chosen = registry.get(component.kind, component.name)
    except PluginError:
        chosen = None
    if chosen is component:
        return (component.name, component.qualified_name)
    return (component.qualified_name,)


def _member(component: Component, registry: Registry) -> type[BaseModel]:
    tags = _tags(component, registry)
    model = create_model(
        f"{component.kind[:-1]}:{component.qualified_name}",
        __base__=component.config,
        name=(Literal[tags], Field(description=component.summary or component.name)),
    )
    return model


def block_type(kind: str, registry: Registry) -> Any:
    members = [_member(c, registry) for c in registry.of_kind(kind)]
    if not members:
        return None
    if len(members) == 1:
        return members[0]
    return Annotated[Union[tuple(members)], Field(discriminator="name")]  # noqa: UP007


def recipe_schema(registry: Registry) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "extends": (list[str] | str | None, Field(None, description="base recipes, merged first")),
        "seed": (int, RecipeModel.model_fields["seed"]),
        "losses": (LossConfig, Field(default_factory=LossConfig)),
        "train": (TrainConfig, Field(default_factory=TrainConfig)),
    }
    for key, kind in BLOCK_KINDS.items():
        block = block_type(kind, registry)
        required = key in {"data", "encoder", "bottleneck", "decoder"}
        if key == "metrics":
            names = tuple(c.name for c in registry.of_kind(kind)) or ("",)
            item = Literal[names] if block is None else Union[Literal[names], block]  # noqa: UP007
            fields[key] = (list[item], Field(default_factory=list))
        elif block is None:
            fields[key] = (None, None)
        else:
            fields[key] = (block, ...) if required else (Union[block, None], None)  # noqa: UP007
    model = create_model("LaserRecipe", __config__=ConfigDict(extra="forbid"), **fields)
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "LASER recipe"
    return schema
