"""Recipe text to a plain dict that remembers where each key came from.

Validation errors must name the file and line of the offending key, across ``extends:`` chains
and command-line overrides, so every value is tracked by its key path. Recipes come from
anyone, so reading one is bounded: UTF-8 only, no duplicate keys, limited nesting, aliases and
integer sizes, and only plain YAML types (``!!python/...`` tags are refused, never run).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from laser_core.errors import Problem, RecipeError
from laser_core.recipes.packaged import resolve_base

KeyPath = tuple[str | int, ...]

MAX_DEPTH = 64  # a recipe nests four or five levels; deeper is a mistake or an attack
MAX_NODES = 100_000  # values after expanding aliases; a recipe holds a few hundred
MAX_INT_DIGITS = 20  # LASER's integers are 64-bit (torch's int64); int() of more is slow

_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"


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


def dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


def load_file(path: Path, _chain: tuple[Path, ...] = ()) -> Sourced:
    """Load a recipe file and the bases it ``extends``: paths relative to the file, or
    ``package:path`` for a base shipped inside an installed package (``laser:`` for LASER's)."""
    path = path.resolve()
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise RecipeError([Problem(str(path), "extends", f"extends itself: {cycle}")])
    if not path.is_file():
        raise RecipeError([Problem("command line", "", f"no such recipe {path}")])
    data, origins = parse(_read_text(path), str(path), lines=True)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError([Problem(f"{path}:1", "", "a recipe must be a mapping of keys")])
    own = Sourced(data, origins, str(path))
    merged = Sourced({}, file=str(path))
    for base in _bases(own, path):
        merged = merge(merged, load_file(base, (*_chain, path)))
    return merge(merged, own)


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise RecipeError([Problem(str(path), "", f"cannot read: {error.strerror}")]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        byte = raw[error.start]
        message = (
            f"not UTF-8: byte 0x{byte:02x} at byte offset {error.start}; "
            "recipes are UTF-8 text, save the file as UTF-8"
        )
        raise RecipeError([Problem(f"{path}:{line}", "", message)]) from None


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


def parse(
    text: str, where: str, lines: bool = False, prefix: KeyPath = ()
) -> tuple[Any, dict[KeyPath, str]]:
    """Plain YAML data from ``text`` and, with ``lines``, ``where:line`` of each key path.
    Raises RecipeError, located at ``where`` (and the line, with ``lines``), for anything a
    recipe may not hold; ``prefix`` is the key path the text is the value of."""

    def at(mark: yaml.Mark | None) -> str:
        return f"{where}:{mark.line + 1}" if mark and lines else where

    _check_depth(text, at)
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # refuses control characters such as NUL right here
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _check_nodes(node, at, prefix)
        data = loader.construct_document(node)
    except yaml.YAMLError as error:
        raise RecipeError([_yaml_problem(error, text, at)]) from None
    finally:
        if loader is not None:
            loader.dispose()
    origins: dict[KeyPath, str] = {}
    if lines:
        _record_lines(node, (), where, origins)
    return data, origins


def _yaml_problem(error: yaml.YAMLError, text: str, at: Callable[[yaml.Mark], str]) -> Problem:
    mark = getattr(error, "problem_mark", None)
    if isinstance(error, yaml.reader.ReaderError):  # a character YAML refuses, by offset
        line = text.count("\n", 0, error.position)
        mark = yaml.Mark("", error.position, line, 0, None, None)
        reason = f"character {error.character:#06x} is not allowed in YAML text"
    else:
        parts = [getattr(error, "context", None), getattr(error, "problem", None)]
        reason = "; ".join(p for p in parts if p) or str(error)
    return Problem(at(mark), "", f"not valid YAML: {reason}")


def _check_depth(text: str, at: Callable[[yaml.Mark], str]) -> None:
    """Refuse deep nesting from the event stream, before the recursive composer sees it."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    message = f"nested more than {MAX_DEPTH} levels deep; a recipe needs a few"
                    raise RecipeError([Problem(at(event.start_mark), "", message)])
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return  # parse() reports it with its line


def _check_nodes(root: yaml.Node, at: Callable[[yaml.Mark], str], prefix: KeyPath) -> None:
    """Duplicate keys, oversized integers, self-referencing aliases and alias expansion
    beyond MAX_NODES, each node checked once however often aliases repeat it."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def fail(node: yaml.Node, path: KeyPath, message: str) -> None:
        raise RecipeError([Problem(at(node.start_mark), dotted(path), message)])

    def size(node: yaml.Node, path: KeyPath) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_nodes:
            fail(node, path, "an alias refers to the value that contains it")
        if len(path) - len(prefix) > MAX_DEPTH:
            fail(node, path, f"aliases nest values more than {MAX_DEPTH} levels deep")
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                    # YAML lets the last of two equal keys win silently; a recipe may not
                    first = seen.get((key.tag, key.value))
                    if first is not None:
                        message = f"duplicate key (first at line {first}); keep one of them"
                        fail(key, (*path, key.value), message)
                    seen[(key.tag, key.value)] = key.start_mark.line + 1
                total += size(key, path) + size(value, (*path, key.value))
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item, (*path, i)) for i, item in enumerate(node.value))
        elif node.tag == _INT_TAG and len(node.value.lstrip("+-")) > MAX_INT_DIGITS:
            digits = len(node.value.lstrip("+-"))
            fail(node, path, f"an integer of {digits} digits; LASER's integers fit in 64 bits")
        open_nodes.discard(id(node))
        if total > MAX_NODES:
            fail(node, path, f"aliases expand to more than {MAX_NODES} values; write it out")
        sizes[id(node)] = total
        return total

    size(root, prefix)


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
        key, sep, raw = text.lstrip("~").partition("=")
        if not key or (not delete and not sep) or (delete and sep):
            raise RecipeError([Problem(where, "", "write key.sub=value, or ~key.sub to delete")])
        path = tuple(int(p) if p.isdigit() else p for p in key.split("."))
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
