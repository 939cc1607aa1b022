"""The plugin manager: loads plugins from the ``annota`` entry-point group, records load errors,
attributes what each plugin registers, validates plugin configuration, and calls hooks that may
return awaitables.

Built-in plugins are entry points of the ``annota`` distribution itself, loaded exactly like a
third-party package's.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pluggy

from annota.core import PROJECT_NAME, hookspecs
from annota.core.errors import ConfigError

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = PROJECT_NAME


@dataclass
class PluginInfo:
    """What ``annota plugins`` and ``GET /api/server/plugins`` report about one plugin."""

    name: str
    version: str | None
    #: "builtin" (shipped with annota), "entry point" (another package) or "registered" (in code)
    source: str
    distribution: str | None = None
    hooks: list[str] = field(default_factory=list)
    #: "ok", "error" or "disabled"
    status: str = "ok"
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "distribution": self.distribution,
            "hooks": self.hooks,
            "status": self.status,
            "error": self.error,
        }


def _resolve_secret(value: Any, where: str) -> Any:
    """``{env = "VAR"}`` and ``{file = "/path"}`` indirections for secrets."""
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, ref),) = value.items()
        if kind == "env":
            if ref not in os.environ:
                raise ConfigError(f"{where}: environment variable {ref!r} is not set")
            return os.environ[ref]
        if kind == "file":
            try:
                return Path(ref).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{where}: cannot read secret file {ref!r}: {exc.strerror}") from exc
    return value


def resolve_secrets(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {key: _resolve_secret(value, f"{where}.{key}") for key, value in values.items()}


def convert_config(cls: type[Any], values: Mapping[str, Any], where: str) -> Any:
    """Validate ``values`` into the msgspec Struct ``cls``; errors name ``where`` and the key."""
    try:
        return msgspec.convert(dict(values), cls, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        key = ""
        if " - at `$." in message:
            message, _, path = message.rpartition(" - at `$.")
            key = "." + path.rstrip("`")
        raise ConfigError(f"{where}{key}: {message}") from exc


class PluginManager:
    """annota's wrapper around ``pluggy.PluginManager``."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.config_classes: dict[str, type[Any]] = {}
        self._configs: dict[str, Any] = {}

    @property
    def hook(self) -> Any:
        return self.pm.hook

    # --- loading ----------------------------------------------------------------------------

    def load_entry_points(self, disabled: Iterable[str] = ()) -> None:
        """Load every plugin of the ``annota`` entry-point group; a failing one is recorded and skipped."""
        import importlib.metadata

        disabled = set(disabled)
        seen: set[str] = set()
        for dist in importlib.metadata.distributions():
            for ep in dist.entry_points:
                if ep.group != ENTRY_POINT_GROUP or ep.name in seen:
                    continue
                seen.add(ep.name)
                dist_name = dist.metadata["Name"]
                source = "builtin" if dist_name == PROJECT_NAME else "entry point"
                info = PluginInfo(ep.name, dist.version, source, dist_name)
                self.infos[ep.name] = info
                if ep.name in disabled:
                    info.status = "disabled"
                    continue
                try:
                    plugin = ep.load()
                    self.pm.register(plugin, name=ep.name)
                except Exception as exc:
                    info.status = "error"
                    info.error = "".join(traceback.format_exception_only(exc)).strip()
                    logger.error("plugin %s failed to load: %s", ep.name, info.error)
                    continue
                info.hooks = self._hook_names(ep.name)

    def load_named(self, entries: Mapping[str, str]) -> None:
        """Load just the plugins ``entries`` names (plugin name -> entry-point value), without
        scanning the installed distributions: for commands that know which plugins they need.
        A failing one is recorded and skipped like in ``load_entry_points``."""
        for name, value in entries.items():
            info = self.infos[name] = PluginInfo(name, None, "entry point")
            try:
                # ``module`` or ``module:attribute.path``, resolved as importlib.metadata does
                # (without importing it: it is a tenth of a small conversion's start-up)
                module, _, attribute = value.partition(":")
                plugin = importlib.import_module(module.strip())
                for part in filter(None, attribute.strip().split(".")):
                    plugin = getattr(plugin, part)
                self.pm.register(plugin, name=name)
            except Exception as exc:
                info.status = "error"
                info.error = "".join(traceback.format_exception_only(exc)).strip()
                continue
            info.hooks = self._hook_names(name)

    def register(self, plugin: Any, name: str, version: str | None = None) -> None:
        """Register a plugin object given in code (tests, embedding applications)."""
        self.pm.register(plugin, name=name)
        self.infos[name] = PluginInfo(name, version, "registered", hooks=self._hook_names(name))

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.infos.pop(name, None)

    def _hook_names(self, name: str) -> list[str]:
        plugin = self.pm.get_plugin(name)
        callers = self.pm.get_hookcallers(plugin) or []
        return sorted(caller.name for caller in callers)

    def check(self) -> None:
        """Refuse hookimpls that match no hookspec (usually a misspelled hook name)."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            name = self.pm.get_name(exc.plugin) or repr(exc.plugin)
            raise ConfigError(f"plugin {name}: {exc}") from exc

    def unknown_hooks(self) -> dict[str, list[str]]:
        """Hookimpl names that match no hookspec, by plugin: what ``check`` refuses, for listings
        that report every broken plugin instead of stopping at the first."""
        unknown: dict[str, list[str]] = {}
        for hook_name, caller in vars(self.pm.hook).items():
            if hook_name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if not impl.optionalhook:
                    unknown.setdefault(impl.plugin_name, []).append(hook_name)
        return unknown

    @property
    def active(self) -> list[PluginInfo]:
        return [info for info in self.infos.values() if info.status == "ok"]

    # --- collectors -------------------------------------------------------------------------

    def collect(self, hook_name: str, handler: Callable[..., Any]) -> None:
        """Call a ``register_*`` collector hook on every plugin, passing each its own ``register``
        callback so ``handler(plugin_name, *args, **kwargs)`` knows who registered what."""
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):
            plugin_name = impl.plugin_name

            def register(*args: Any, _plugin: str = plugin_name, **kwargs: Any) -> Any:
                return handler(_plugin, *args, **kwargs)

            kwargs = {arg: register for arg in impl.argnames}
            try:
                impl.function(**kwargs)
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(f"plugin {plugin_name}: {hook_name} failed: {exc}") from exc

    # --- configuration ----------------------------------------------------------------------

    def configure(self, file_values: Mapping[str, Mapping[str, Any]], environ: Mapping[str, str]) -> None:
        """Validate every plugin's configuration (``[plugins.<name>]`` plus ``ANNOTA_<NAME>_<KEY>``)."""

        def declare(plugin: str, cls: type[Any]) -> None:
            if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
                raise ConfigError(f"plugin {plugin}: register_config expects a msgspec.Struct class")
            self.config_classes[plugin] = cls

        self.collect("register_config", declare)
        for name in file_values:
            info = self.infos.get(name)
            if info is None:
                raise ConfigError(f"[plugins.{name}]: no plugin named {name!r} is installed")
            if info.status == "ok" and name not in self.config_classes:
                raise ConfigError(f"[plugins.{name}]: plugin {name!r} takes no configuration")
        for name, cls in self.config_classes.items():
            values = dict(file_values.get(name, {}))
            prefix = f"{PROJECT_NAME.upper()}_{name.upper().replace('-', '_')}_"
            for key in cls.__struct_fields__:
                env_value = environ.get(prefix + key.upper())
                if env_value is not None:
                    values[key] = env_value
            values = resolve_secrets(values, f"plugins.{name}")
            self._configs[name] = convert_config(cls, values, f"plugins.{name}")

    def config(self, name: str) -> Any:
        """The validated configuration of plugin ``name``."""
        return self._configs[name]

    # --- calling hooks that may be async ----------------------------------------------------

    async def first_result(self, hook_name: str, **kwargs: Any) -> Any:
        """Like a ``firstresult`` call, but awaits awaitable answers before deciding."""
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):
            result = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                return result
        return None

    async def call_all(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call every implementation in order, awaiting awaitable results."""
        results = []
        for result in getattr(self.pm.hook, hook_name)(**kwargs):
            if inspect.isawaitable(result):
                result = await result
            results.append(result)
        return results
