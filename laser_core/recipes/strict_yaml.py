"""Reading YAML that anyone may have written: plain data only, and bounded.

UTF-8 only; no key twice in one mapping (YAML would let the last win silently); no
``!!python/...`` or other tags beyond plain YAML (refused, never run); nesting, alias
expansion and integer sizes bounded, checked before anything recursive or quadratic runs, so
no file makes validation hang, exhaust memory or raise a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from laser_core.errors import Problem, RecipeError

KeyPath = tuple[str | int, ...]

MAX_DEPTH = 64  # a recipe nests four or five levels; deeper is a mistake or an attack
MAX_NODES = 100_000  # values after expanding aliases; a recipe holds a few hundred
MAX_INT_DIGITS = 20  # LASER's integers are 64-bit (torch's int64); int() of more is slow

_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


def read_text(path: Path) -> str:
    """The file's text; anything but UTF-8 is an error naming the byte and its offset."""
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
