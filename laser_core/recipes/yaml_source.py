"""Recipe text to a plain dict that remembers where each key came from.

Validation errors must name the file and line of the offending key, across ``extends:`` chains
and command-line overrides, so every value is tracked by its key path.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from laser_core.errors import Problem, RecipeError

KeyPath = tuple[str | int, ...]


@dataclass
class Sourced:
    """A recipe mapping plus, for each key path, where it was written."""

    data: dict[str, Any]
    origins: dict[KeyPath, str] = field(default_factory=dict)

    def origin(self, path: KeyPath) -> str:
        """Where ``path`` or its nearest written ancestor came from."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.origins:
                return self.origins[path[:end]]
        return next(iter(self.origins.values()), "<recipe>")


def dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


def load_file(path: Path, _chain: tuple[Path, ...] = ()) -> Sourced:
    """Load a recipe file and the bases it ``extends`` (paths relative to the file)."""
    path = path.resolve()
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise RecipeError([Problem(str(path), "extends", f"extends itself: {cycle}")])
    if not path.is_file():
        where = str(_chain[-1]) if _chain else "command line"
        raise RecipeError([Problem(where, "extends" if _chain else "", f"no such recipe {path}")])
    text = path.read_text()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise RecipeError([Problem(f"{path}{line}", "", f"not valid YAML: {error}")]) from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise RecipeError([Problem(f"{path}:1", "", "a recipe must be a mapping of keys")])
    origins: dict[KeyPath, str] = {}
    _record_lines(node, (), str(path), origins)
    own = Sourced(data, origins)

    bases = own.data.pop("extends", None) or []
    if isinstance(bases, str):
        bases = [bases]
    merged = Sourced({})
    for base in bases:
        merged = merge(merged, load_file(path.parent / base, (*_chain, path)))
    return merge(merged, own)


def _record_lines(node: yaml.Node | None, path: KeyPath, file: str, out: dict) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = (*path, key_node.value)
            out[key_path] = f"{file}:{key_node.start_mark.line + 1}"
            _record_lines(value_node, key_path, file, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out[(*path, index)] = f"{file}:{item.start_mark.line + 1}"
            _record_lines(item, (*path, index), file, out)


def merge(base: Sourced, child: Sourced) -> Sourced:
    """Deep-merge mappings; lists and scalars replace; a block whose ``name`` changes is
    replaced whole, since the old block's keys belong to another plugin's config."""
    data = copy.deepcopy(base.data)
    origins = dict(base.origins)
    _merge_into(data, child.data, (), origins, child.origins)
    return Sourced(data, origins)


def _merge_into(
    target: dict, source: dict, path: KeyPath, origins: dict, source_origins: dict
) -> None:
    for key, value in source.items():
        key_path = (*path, key)
        old = target.get(key)
        if (
            isinstance(old, dict)
            and isinstance(value, dict)
            and old.get("name") == value.get("name", old.get("name"))
        ):
            origins[key_path] = source_origins.get(key_path, origins.get(key_path))
            _merge_into(old, value, key_path, origins, source_origins)
            continue
        _drop_below(origins, key_path)
        target[key] = copy.deepcopy(value)
        origins.update({p: o for p, o in source_origins.items() if p[: len(key_path)] == key_path})


def _drop_below(origins: dict, path: KeyPath) -> None:
    for stale in [p for p in origins if p[: len(path)] == path]:
        del origins[stale]


def apply_overrides(recipe: Sourced, overrides: list[str]) -> Sourced:
    """Apply ``a.b=value`` (value parsed as YAML, so 1e-4 is a float) and ``~a.b`` (delete)."""
    data = copy.deepcopy(recipe.data)
    origins = dict(recipe.origins)
    for text in overrides:
        where = f"override '{text}'"
        delete = text.startswith("~")
        key, sep, raw = text.lstrip("~").partition("=")
        if not key or (not delete and not sep) or (delete and sep):
            raise RecipeError([Problem(where, "", "write key.sub=value, or ~key.sub to delete")])
        path = tuple(int(p) if p.isdigit() else p for p in key.split("."))
        parent = _walk_to_parent(data, path, where, create=not delete)
        if delete:
            if path[-1] not in _keys(parent):
                raise RecipeError([Problem(where, key, "nothing to delete at this key")])
            del parent[path[-1]]
            _drop_below(origins, path)
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as error:
            raise RecipeError([Problem(where, key, f"value is not valid YAML: {error}")]) from None
        if isinstance(parent, list) and path[-1] >= len(parent):
            raise RecipeError([Problem(where, key, f"index past the end of a {len(parent)}-list")])
        parent[path[-1]] = value
        _drop_below(origins, path)
        origins[path] = where
    return Sourced(data, origins)


def _walk_to_parent(data: dict, path: KeyPath, where: str, create: bool) -> Any:
    node: Any = data
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, dict) and part not in node and create:
            node[part] = {}
        if part not in _keys(node):
            raise RecipeError([Problem(where, dotted(path[: depth + 1]), "no such key")])
        node = node[part]
    if not isinstance(node, dict | list):
        raise RecipeError([Problem(where, dotted(path[:-1]), "is a value, not a mapping")])
    return node


def _keys(node: Any) -> Any:
    if isinstance(node, dict):
        return node.keys()
    if isinstance(node, list):
        return range(len(node))
    return ()
