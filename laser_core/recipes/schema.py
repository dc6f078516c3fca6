"""The recipe's JSON Schema for the plugins installed, so YAML editors complete and check keys.

A block's ``name`` selects the config its other keys must match (``if name is vq then ...``),
so a typo is reported inside the block that has it, not as "matches none of the plugins". A
recipe with ``extends:`` gets blocks and names from its bases, so it is not required to write
them; one without must.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model
from pydantic.json_schema import models_json_schema

from laser_core.errors import PluginError
from laser_core.plugin.blocks import BLOCKS, BlockSpec, singular
from laser_core.plugin.registry import Component, Registry
from laser_core.recipes.model import RecipeSettings

DEFS = "#/$defs/{model}"


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
    """The plugin's config with its ``name`` key, as one block that selects it is written."""
    return create_model(
        f"{singular(component.kind)}:{component.qualified_name}",
        __base__=component.config,
        name=(Literal[_tags(component, registry)], Field(description=component.summary)),
    )


def recipe_schema(registry: Registry) -> dict[str, Any]:
    members = {
        spec.key: [(c, _member(c, registry)) for c in registry.of_kind(spec.kind)]
        for spec in BLOCKS
    }
    models = [RecipeSettings, *(model for pairs in members.values() for _, model in pairs)]
    refs, top = models_json_schema([(m, "validation") for m in models], ref_template=DEFS)
    defs = top.get("$defs", {})
    settings = defs.pop(RecipeSettings.__name__)
    properties: dict[str, Any] = {
        "extends": {
            "description": "base recipes merged first: paths relative to this file, or "
            "package:path such as laser:base/cpu_small.yaml",
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string", "minLength": 1}},
            ],
        },
        **settings["properties"],
    }
    for spec in BLOCKS:
        pairs = [(component, refs[(model, "validation")]) for component, model in members[spec.key]]
        properties[spec.key] = _block_property(spec, pairs, registry)
    named = {"required": ["name"]}
    standalone = {
        "required": [spec.key for spec in BLOCKS if spec.presence == "required"],
        "properties": {
            spec.key: {"items": {"if": {"type": "object"}, "then": named}}
            if spec.presence == "list"
            else {"if": {"type": "object"}, "then": named}
            for spec in BLOCKS
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "LASER recipe",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        # without extends, every required block and every block's name must be written here
        "if": {"required": ["extends"]},
        "else": standalone,
        "$defs": defs,
    }


def _block_property(
    spec: BlockSpec, members: list[tuple[Component, dict[str, Any]]], registry: Registry
) -> dict[str, Any]:
    names = [tag for component, _ in members for tag in _tags(component, registry)]
    optional = spec.presence == "optional"
    block: dict[str, Any] = {
        "type": ["object", "null"] if optional else "object",
        "description": f"a {spec.singular}: 'name' picks the plugin, the other keys its config",
        "properties": {"name": {"enum": names}},
        "allOf": [
            {
                "if": {
                    "type": "object",
                    "properties": {"name": {"enum": list(_tags(component, registry))}},
                    "required": ["name"],
                },
                "then": ref,
            }
            for component, ref in members
        ],
    }
    if spec.presence == "list":
        return {
            "type": "array",
            "items": {"if": {"type": "string"}, "then": {"enum": names}, "else": block},
        }
    return block
