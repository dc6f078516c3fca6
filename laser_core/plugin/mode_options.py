"""Config options that apply under one value of a mode key, e.g. ``decay`` under ``update: ema``.

Such an option defaults to None, meaning "the default of its mode": a recipe that sets it under
another mode is refused, since it would do nothing, while a resolved recipe, which prints it as
null, still reloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, model_validator

from laser_core.plugin.contracts import ComponentConfig


@dataclass(frozen=True)
class ModeOptions:
    """``options`` maps each option to the mode it applies in and its default there."""

    mode_key: str
    options: dict[str, tuple[str, Any]]

    def check(self, config: BaseModel) -> None:
        """Raise ValueError (a pydantic validator's error) for an option set under another
        mode; call it from a ``model_validator(mode="after")``."""
        mode = getattr(config, self.mode_key)
        for option, (applies_in, _) in self.options.items():
            if getattr(config, option) is not None and mode != applies_in:
                raise ValueError(
                    f"{option} applies only to {self.mode_key}: {applies_in}, not "
                    f"{self.mode_key}: {mode}; remove it or set {self.mode_key}: {applies_in}"
                )

    def value(self, config: BaseModel, option: str) -> Any:
        """The option as set, or its mode's default when the recipe leaves it out."""
        value = getattr(config, option)
        return self.options[option][1] if value is None else value


class ModeConfig(ComponentConfig):
    """A config with options that apply in one mode only: a subclass sets ``mode_options``,
    and validation refuses an option set under another mode."""

    mode_options: ClassVar[ModeOptions]

    @model_validator(mode="after")
    def _options_match_their_mode(self) -> ModeConfig:
        self.mode_options.check(self)
        return self

    def option(self, name: str) -> Any:
        """A mode's option as set, or its mode's default when the recipe leaves it out."""
        return self.mode_options.value(self, name)
