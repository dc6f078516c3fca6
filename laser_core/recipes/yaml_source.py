"""Recipe text to a plain dict that remembers where each key came from.

Validation errors must name the file and line of the offending key, across ``extends:`` chains
and command-line overrides, so every value is tracked by its key path. Each file and override
value is read by :mod:`.strict_yaml`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from laser_core.errors import Problem, RecipeError
from laser_core.recipes.packaged import resolve_base
from laser_core.recipes.strict_yaml import KeyPath, dotted, parse, read_text


@dataclass
class Sourced:
    """A recipe mapping plus, for each key path, where it was written; ``file`` is the
    recipe that was loaded, where a key nobody wrote (a missing block) is reported."""

    data: dict[str, Any]
    origins: dict[KeyPath, str] = field(default_factory=dict)
    file: str = "<recipe>"

    def origin(self, path: KeyPath) -> str:
        """Where ``path`` or its nearest written ancestor came from."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.origins:
                return self.origins[path[:end]]
        return self.file


def load_file(path: Path, _chain: tuple[Path, ...] = ()) -> Sourced:
    """Load a recipe file and the bases it ``extends``: paths relative to the file, or
    ``package:path`` for a base shipped inside an installed package (``laser:`` for LASER's)."""
    path = path.resolve()
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise RecipeError([Problem(str(path), "extends", f"extends itself: {cycle}")])
    if path.is_dir():
        raise RecipeError([Problem("command line", "", _folder_message(path))])
    if not path.is_file():
        raise RecipeError([Problem("command line", "", f"no such recipe {path}")])
    data, origins = parse(read_text(path), str(path), lines=True)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError([Problem(f"{path}:1", "", "a recipe must be a mapping of keys")])
    own = Sourced(data, origins, str(path))
    merged = Sourced({}, file=str(path))
    for base in _bases(own, path):
        merged = merge(merged, load_file(base, (*_chain, path)))
    return merge(merged, own)


def _folder_message(folder: Path) -> str:
    """For a folder given as a recipe: the recipes in it, to pick one."""
    found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.yaml"))
    listed = "".join(f"\n    {name}" for name in found[:40])
    more = f"\n    ... and {len(found) - 40} more" if len(found) > 40 else ""
    if not found:
        return f"{folder} is a folder, not a recipe, and holds no .yaml files"
    return f"{folder} is a folder, not a recipe; give one of the recipes in it:{listed}{more}"


def _bases(own: Sourced, path: Path) -> list[Path]:
    """The files named by ``extends:`` (removed from ``own``), each checked to be a path."""
    if "extends" not in own.data:
        return []
    value = own.data.pop("extends")
    where = own.origin(("extends",))
    hint = "write a path relative to this file, or package:path such as laser:base/cpu_small.yaml"
    if isinstance(value, str):
        entries = [(value, where, "extends")]
    elif isinstance(value, list):
        entries = [(v, own.origin(("extends", i)), f"extends.{i}") for i, v in enumerate(value)]
    else:
        got = "a mapping" if isinstance(value, dict) else repr(value)
        message = f"takes a path or a list of paths, not {got}; {hint}"
        raise RecipeError([Problem(where, "extends", message)])
    problems = [
        Problem(at, key, f"{entry!r} is not a path; {hint}")
        for entry, at, key in entries
        if not isinstance(entry, str) or not entry.strip()
    ]
    if problems:
        raise RecipeError(problems)
    _drop_below(own.origins, ("extends",))
    return [resolve_base(entry, path, at, key) for entry, at, key in entries]


def merge(base: Sourced, child: Sourced) -> Sourced:
    """Deep-merge mappings; lists and scalars replace; a block whose ``name`` changes is
    replaced whole, since the old block's keys belong to another plugin's config."""
    data = copy.deepcopy(base.data)
    origins = dict(base.origins)
    _merge_into(data, child.data, (), origins, child.origins)
    return Sourced(data, origins, child.file)


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
        key, sep, raw = text.removeprefix("~").partition("=")
        parts = key.split(".")
        if bool(sep) == delete:
            raise RecipeError([Problem(where, "", "write key.sub=value, or ~key.sub to delete")])
        if not all(part and part.strip() == part and "~" not in part for part in parts):
            message = (
                "is not a dotted key such as train.steps; write key.sub=value, or ~key.sub "
                "(one ~) to delete"
            )
            raise RecipeError([Problem(where, key, message)])
        path = tuple(int(p) if p.isdigit() else p for p in parts)
        parent = _walk_to_parent(data, path, where, create=not delete)
        if isinstance(parent, list):
            _check_index(parent, path, where)
        if delete:
            if path[-1] not in _keys(parent):
                raise RecipeError([Problem(where, key, "nothing to delete at this key")])
            del parent[path[-1]]
            _drop_below(origins, path)
            continue
        parent[path[-1]] = parse(raw, where, prefix=path)[0] if raw.strip() else None
        _drop_below(origins, path)
        origins[path] = where
    return Sourced(data, origins, recipe.file)


def _check_index(items: list, path: KeyPath, where: str) -> None:
    index = path[-1]
    if not isinstance(index, int) or index >= len(items):
        valid = f"0 to {len(items) - 1}" if items else "none, the list is empty"
        message = f"'{index}' is not an index of this {len(items)}-item list (valid: {valid})"
        raise RecipeError([Problem(where, dotted(path), message)])


def _walk_to_parent(data: dict, path: KeyPath, where: str, create: bool) -> Any:
    node: Any = data
    for depth, part in enumerate(path):
        if not isinstance(node, dict | list):
            raise RecipeError([Problem(where, dotted(path[:depth]), "is a value, not a mapping")])
        if depth == len(path) - 1:
            return node
        if isinstance(node, dict) and part not in node and create:
            node[part] = {}
        if part not in _keys(node):
            raise RecipeError([Problem(where, dotted(path[: depth + 1]), "no such key")])
        node = node[part]
    return node


def _keys(node: Any) -> Any:
    if isinstance(node, dict):
        return node.keys()
    if isinstance(node, list):
        return range(len(node))
    return ()
