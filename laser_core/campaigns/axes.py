"""Sweep axes from the command line: ``key=v1,v2,v3`` is an axis (Hydra's multirun form),
``key=v`` a plain override. Commas inside brackets, braces or quotes do not split, so
``key=[1,2]`` and ``'key={a: 1, b: 2}'`` stay one value."""

from __future__ import annotations

from dataclasses import dataclass

from laser_core.errors import Problem, RecipeError

_CLOSING = {"[": "]", "{": "}", "(": ")"}


@dataclass(frozen=True)
class Axis:
    """One recipe key and the values it takes, each as override text (YAML)."""

    key: str
    values: tuple[str, ...]


def split_values(text: str) -> list[str]:
    """Split at top-level commas; brackets, braces and quotes group."""
    parts, current, stack, quote = [], [], [], ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _CLOSING:
            stack.append(_CLOSING[char])
        elif stack and char == stack[-1]:
            stack.pop()
        elif char == "," and not stack:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def parse_override(text: str, where: str | None = None) -> Axis | str:
    """An axis when the value splits into several, else the override text unchanged."""
    if text.startswith("~") or "=" not in text:
        return text
    key, _, raw = text.partition("=")
    values = split_values(raw)
    if len(values) == 1:
        return text
    if any(not value for value in values):
        problem = Problem(where or f"axis '{text}'", key, "an axis value is empty (a,,b or a,)")
        raise RecipeError([problem])
    return Axis(key.strip(), tuple(values))


def split_arguments(items: list[str]) -> tuple[list[Axis], list[str]]:
    """Command-line items into axes and the fixed overrides that apply to every run."""
    axes: list[Axis] = []
    overrides: list[str] = []
    for item in items:
        parsed = parse_override(item)
        (axes if isinstance(parsed, Axis) else overrides).append(parsed)
    return axes, overrides
