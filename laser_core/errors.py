"""Errors meant for people: what was wrong, where, and what to do. The CLI prints them without
a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


class LaserError(Exception):
    """A user-facing error; ``str()`` is the whole message."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a recipe, located as precisely as we know."""

    where: str  # "recipes/a.yaml:12" or "override 'train.lr=x'"
    key: str  # dotted key, e.g. "bottleneck.codebook_size"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.key or '(top level)'}: {self.message}"


class RecipeError(LaserError):
    """Every problem found in a recipe, reported together so one run fixes them all."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("invalid recipe:\n" + "\n".join(f"  {p}" for p in problems))


class PluginError(LaserError):
    """A component cannot be provided: unknown, ambiguous, or from a plugin that failed."""


class ComponentError(LaserError):
    """Raised by a plugin's factory when its config cannot work with what it was given, e.g.
    ``sparsity`` above what the encoder's ``latent_dim`` allows. Say what is wrong and what to
    change; LASER adds the recipe's file:line, the component and its plugin, and ``laser
    validate`` reports it before any training."""


class ContractError(PluginError, AssertionError):
    """A component broke its contract (wrong type, shape or dtype). An AssertionError too, so
    that the conformance kit's checks read as failed assertions in a plugin's tests."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' did you mean ...?' suffix, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
