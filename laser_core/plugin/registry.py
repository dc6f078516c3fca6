"""Plugin discovery and component lookup.

Built-in and third-party plugins alike are modules named by the ``laser`` entry-point group.
A plugin that fails to import or register is recorded, not fatal: only a recipe that needs it
fails, and ``laser plugins`` shows why.
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import inspect
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
from pydantic import BaseModel

from laser_core.errors import PluginError, did_you_mean
from laser_core.plugin import hookspecs
from laser_core.plugin.blocks import singular
from laser_core.plugin.contracts import CONFIG_BASES, KINDS, ComponentConfig

ENTRY_POINT_GROUP = "laser"
BUILTIN_DISTRIBUTION = "laser"
"""The distribution that ships the built-ins: a bare name means its component when it has one,
so installing a plugin never changes what an existing recipe or run directory means."""
DISABLE_ENV = "LASER_DISABLE_PLUGINS"
HOOK_PREFIX = "laser_register_"


@dataclass(frozen=True)
class Provider:
    """Who supplied a plugin: its entry-point name and the distribution that ships it."""

    plugin: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"{self.plugin} ({self.distribution} {self.version})"

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION

    def matches(self, plugin: str) -> bool:
        """Whether ``plugin`` (the part before ':' in a qualified name) names this provider."""
        return plugin in (self.plugin, self.distribution)


@dataclass(frozen=True)
class Component:
    kind: str
    name: str
    factory: Callable[..., Any]
    config: type[BaseModel]
    summary: str
    provider: Provider

    @property
    def qualified_name(self) -> str:
        return f"{self.provider.plugin}:{self.name}"

    @property
    def reference(self) -> str:
        """The name a recipe records: bare for a built-in, which a bare name always means;
        qualified for any other, so that a later built-in or plugin of the same name cannot
        take its place."""
        return self.name if self.provider.builtin else self.qualified_name


@dataclass(frozen=True)
class LoadFailure:
    provider: Provider
    error: str


@dataclass
class Registry:
    """Every component offered by the loaded plugins, by kind and name."""

    components: dict[str, dict[str, list[Component]]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )
    failures: list[LoadFailure] = field(default_factory=list)
    manager: pluggy.PluginManager = field(init=False)

    def __post_init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)

    # -- loading -------------------------------------------------------------------------

    def load_entry_points(self, disabled: set[str] | None = None) -> None:
        """Load every plugin of the ``laser`` group once, skipping disabled ones."""
        disabled = disabled if disabled is not None else disabled_plugins()
        seen: set[tuple[str, str]] = set()
        distributions: dict[int, tuple[str, str]] = {}
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            # Editable installs can list the same entry point twice.
            if (entry_point.name, entry_point.value) in seen:
                continue
            seen.add((entry_point.name, entry_point.value))
            provider = _provider_of(entry_point, distributions)
            if provider.plugin in disabled or provider.distribution in disabled:
                continue
            try:
                module = entry_point.load()
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # sys.exit included: the plugin's failure, not ours
                where = plugin_root(entry_point.value.split(":")[0])
                self.failures.append(LoadFailure(provider, describe_error(error, where)))
                continue
            self.add_plugin(module, provider)

    def add_plugin(self, plugin: ModuleType | object, provider: Provider) -> None:
        """Register one plugin's components all-or-nothing; record a failure instead of
        raising, so one broken plugin never takes down the others."""
        staged: list[Component] = []
        try:
            self.manager.register(plugin, name=provider.plugin)
        except (pluggy.PluginValidationError, ValueError) as error:
            self.failures.append(LoadFailure(provider, describe_error(error)))
            return
        try:
            self._check_hook_names(plugin)
            for kind in KINDS:
                caller = self.manager.subset_hook_caller(
                    HOOK_PREFIX + kind,
                    remove_plugins=[p for p in self.manager.get_plugins() if p is not plugin],
                )
                caller(register=_Registration(kind, provider, staged))
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # sys.exit in a hook is isolated like any failure
            self.manager.unregister(plugin)
            module = plugin.__name__ if inspect.ismodule(plugin) else type(plugin).__module__
            self.failures.append(LoadFailure(provider, describe_error(error, plugin_root(module))))
            return
        for component in staged:
            self.components[component.kind].setdefault(component.name, []).append(component)

    def _check_hook_names(self, plugin: object) -> None:
        """pluggy's check_pending, with a "did you mean" for a misspelt hook."""
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError:
            hooks = [HOOK_PREFIX + kind for kind in KINDS]
            for attr in dir(plugin):
                if attr.startswith("laser_") and attr not in hooks:
                    raise PluginError(
                        f"'{attr}' is not a LASER hook{did_you_mean(attr, hooks)}"
                    ) from None
            raise

    # -- lookup --------------------------------------------------------------------------

    def of_kind(self, kind: str) -> list[Component]:
        _check_kind(kind)
        return [c for providers in self.components[kind].values() for c in providers]

    def get(self, kind: str, name: str, pinned: Provider | None = None) -> Component:
        """Resolve a recipe's ``name`` (``vq`` or ``plugin:vq``) to exactly one component.

        A bare name means the built-in when there is one; a plugin's component of that name
        is then reached by its qualified name. ``pinned`` (the provider a run directory
        recorded) picks that provider's component or fails saying it is gone."""
        _check_kind(kind)
        plugin, _, bare = name.rpartition(":")
        candidates = self.components[kind].get(bare, [])
        if plugin:
            candidates = [c for c in candidates if c.provider.matches(plugin)]
        if pinned is not None:
            return self._pinned(kind, name, candidates, pinned)
        builtin = [c for c in candidates if c.provider.builtin]
        if not plugin and len(builtin) == 1:
            return builtin[0]
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            both = ", ".join(f"'{c.qualified_name}' from {c.provider}" for c in candidates)
            raise PluginError(
                f"{singular(kind)} '{name}' is registered by more than one plugin: {both}; "
                f"write one of the qualified names to choose"
            )
        raise PluginError(self._unknown_message(kind, name, plugin))

    def _pinned(
        self, kind: str, name: str, candidates: list[Component], pinned: Provider
    ) -> Component:
        for component in candidates:
            if (component.provider.plugin, component.provider.distribution) == (
                pinned.plugin,
                pinned.distribution,
            ):
                return component
        others = ", ".join(f"'{c.qualified_name}' from {c.provider}" for c in candidates)
        failed = [f.error for f in self.failures if f.provider.plugin == pinned.plugin]
        raise PluginError(
            f"{singular(kind)} '{name}' was provided by plugin {pinned}, which is "
            + (f"installed but failed to load: {failed[0]}" if failed else "not installed")
            + (f"; installed now: {others}, which need not be the same" if others else "")
            + f"; install {pinned.distribution} {pinned.version} to use this run"
        )

    def _unknown_message(self, kind: str, name: str, plugin: str) -> str:
        available = sorted(self.components[kind])
        message = f"unknown {singular(kind)} '{name}'{did_you_mean(name, available)}"
        message += f"; available: {', '.join(available) or 'none'}"
        failed = [f for f in self.failures if not plugin or f.provider.matches(plugin)]
        for failure in failed:
            message += (
                f"\n  plugin {failure.provider} failed to load and may provide it: {failure.error}"
            )
        return message


class _Registration:
    """The ``register`` callback handed to one plugin's hook for one kind."""

    def __init__(self, kind: str, provider: Provider, staged: list[Component]):
        self.kind, self.provider, self.staged = kind, provider, staged

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        config: type[BaseModel] | None = None,
        summary: str = "",
    ) -> None:
        where = f"plugin {self.provider} registering {singular(self.kind)} '{name}'"
        if not isinstance(name, str) or not name or ":" in name or name != name.strip():
            raise PluginError(f"{where}: name must be a non-empty string without ':'")
        if not callable(factory):
            raise PluginError(f"{where}: factory is not callable")
        base = CONFIG_BASES.get(self.kind, ComponentConfig)
        config = config or base
        if not (isinstance(config, type) and issubclass(config, base)):
            raise PluginError(f"{where}: config must subclass laser_core.{base.__name__}")
        if "name" in config.model_fields:
            raise PluginError(f"{where}: config may not declare 'name'; the recipe uses it")
        if any(c.name == name for c in self.staged if c.kind == self.kind):
            raise PluginError(f"{where}: registered twice by the same plugin")
        if not summary and (inspect.isclass(factory) or inspect.isfunction(factory)):
            summary = first_line(factory.__doc__)
        self.staged.append(Component(self.kind, name, factory, config, summary, self.provider))


def first_line(docstring: str | None) -> str:
    """A docstring's first line without its full stop: the summary a registered class or
    function gives ``laser plugins`` when its plugin names none."""
    lines = (docstring or "").strip().splitlines()
    return lines[0].strip().removesuffix(".") if lines else ""


def disabled_plugins() -> set[str]:
    """Plugins named in $LASER_DISABLE_PLUGINS (comma separated) are never loaded."""
    return {p.strip() for p in os.environ.get(DISABLE_ENV, "").split(",") if p.strip()}


def _provider_of(
    entry_point: metadata.EntryPoint, distributions: dict[int, tuple[str, str]]
) -> Provider:
    """``distributions`` holds each distribution's name and version by id, read once: parsing
    its metadata for each of its entry points took about 40 ms of ``laser validate``."""
    dist = entry_point.dist
    if dist is None:
        return Provider(entry_point.name, entry_point.name, "unknown")
    if id(dist) not in distributions:
        meta = dist.metadata
        distributions[id(dist)] = (meta["Name"], meta["Version"])
    return Provider(entry_point.name, *distributions[id(dist)])


def describe_error(error: BaseException, source: Path | None = None) -> str:
    """The error and the line of the plugin's own code that raised it (the innermost frame
    under ``source``, the plugin's package or file), not our or importlib's frames."""
    what = f"{type(error).__name__}: {error}"
    if isinstance(error, SystemExit):
        what = f"the plugin exited (SystemExit: {error.code})"
    if isinstance(error, SyntaxError) and error.filename:
        return f"{what} (at {error.filename}:{error.lineno})"
    frames = traceback.extract_tb(error.__traceback__)
    if source is not None:
        own = [f for f in frames if Path(f.filename).resolve().is_relative_to(source)]
        frames = own or frames
    return f"{what} (at {frames[-1].filename}:{frames[-1].lineno})" if frames else what


def plugin_root(module: str) -> Path | None:
    """The folder (or file) of an entry point's top-level package, found without importing."""
    try:
        spec = importlib.util.find_spec(module.split(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(spec.origin).resolve() if spec.origin else None


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise PluginError(f"unknown component kind '{kind}'{did_you_mean(kind, KINDS)}")


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry of installed plugins, loaded on first use."""
    global _default
    if _default is None:
        _default = Registry()
        _default.load_entry_points()
    return _default
