"""Plugin manager: built-in plugins and setuptools entry points of group ``mofrr``.

Every component (built-in or third-party) is registered through the same hooks
(:mod:`mofrr_core.hookspecs`). ``MOFRR_PLUGINS`` is an allow-list of entry-point names:
unset loads every installed plugin, ``MOFRR_PLUGINS=eye,white`` only those, and an empty
value built-ins only. A plugin that fails on import or registration is reported by name and
marked broken; the others keep working.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata as metadata
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from mofrr_core import hookspecs
from mofrr_core.spec import ExpertSpec, LandmarkProviderSpec, RetouchOpSpec

ENTRY_POINT_GROUP = "mofrr"
ALLOW_LIST_ENV = "MOFRR_PLUGINS"
BUILTIN_PLUGINS = (
    "mofrr_core.builtin.models",
    "mofrr_core.builtin.retouch_ops",
    "mofrr_core.builtin.landmark_providers",
    "mofrr_core.builtin.datasets",
)
HOOKS = ("register_models", "register_datasets", "register_retouch_ops", "register_landmark_providers",
         "register_experts")


class PluginError(RuntimeError):
    """A plugin could not be loaded or registered something invalid."""


class DuplicateNameError(PluginError):
    """Two plugins registered a component under the same name."""


class UnknownTypeError(KeyError):
    """A ``type:`` or name that no plugin registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


@dataclass
class PluginInfo:
    """What ``mofrr experts`` shows about one plugin."""

    name: str
    distribution: str
    version: str
    builtin: bool
    status: Literal["ok", "broken", "disabled"] = "ok"
    error: str | None = None


@dataclass
class PluginState:
    """Everything the plugins registered, keyed by name."""

    models: dict[str, type] = field(default_factory=dict)
    datasets: dict[str, Callable[..., Any]] = field(default_factory=dict)
    experts: dict[str, ExpertSpec] = field(default_factory=dict)
    retouch_ops: dict[str, dict[str, RetouchOpSpec]] = field(default_factory=dict)
    landmark_providers: dict[str, LandmarkProviderSpec] = field(default_factory=dict)
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    origin: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> distribution

    @property
    def broken(self) -> list[PluginInfo]:
        return [info for info in self.plugins.values() if info.status == "broken"]


def allow_list() -> set[str] | None:
    """Entry-point names allowed by ``MOFRR_PLUGINS`` (``None``: all)."""
    value = os.environ.get(ALLOW_LIST_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class PluginManager:
    """Loads plugins and collects what their hooks register."""

    def __init__(self, entry_points: list[metadata.EntryPoint] | None = None) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.state = PluginState()
        self._entry_points = entry_points

    # -- loading ---------------------------------------------------------------------------
    def load(self) -> PluginState:
        for module_name in BUILTIN_PLUGINS:
            self._register_module("mofrr." + module_name.rsplit(".", 1)[-1], "mofrr", _version("mofrr"), True,
                                  lambda m=module_name: importlib.import_module(m))
        allowed = allow_list()
        entry_points = self._entry_points
        if entry_points is None:
            entry_points = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
        for ep in sorted(entry_points, key=lambda e: e.name):
            dist = ep.dist.name if getattr(ep, "dist", None) is not None else ep.value.split(":")[0]
            version = ep.dist.version if getattr(ep, "dist", None) is not None else "?"
            if allowed is not None and ep.name not in allowed:
                self.state.plugins[ep.name] = PluginInfo(ep.name, dist, version, False, "disabled")
                continue
            self._register_module(ep.name, dist, version, False, ep.load)
        self._collect()
        return self.state

    def _register_module(self, name: str, dist: str, version: str, builtin: bool,
                         load: Callable[[], Any]) -> None:
        info = PluginInfo(name, dist, version, builtin)
        self.state.plugins[name] = info
        try:
            module = load()
            if self.pm.is_registered(module):
                return  # two entry points naming one module: register it once
            self.pm.register(module, name=name)
        except Exception as error:  # noqa: BLE001 - a broken plugin must not break the rest
            self._mark_broken(name, error, "import")

    def _mark_broken(self, name: str, error: BaseException, when: str) -> None:
        info = self.state.plugins[name]
        info.status, info.error = "broken", _describe(error)
        warnings.warn(f"MoFRR plugin {name!r} ({info.distribution}) failed on {when}: {info.error}",
                      stacklevel=3)

    # -- registration ------------------------------------------------------------------------
    def _collect(self) -> None:
        for hook_name in HOOKS:
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():  # registration order: built-ins, then entry points by name
                name = impl.plugin_name
                info = self.state.plugins.get(name)
                if info is None or info.status == "broken":
                    continue
                try:
                    impl.function(register=self._registrar(hook_name, info))
                except Exception as error:  # noqa: BLE001
                    self._mark_broken(name, error, hook_name)

    def _registrar(self, hook_name: str, info: PluginInfo) -> Callable[..., None]:
        state = self.state

        def claim(kind: str, name: str) -> None:
            owner = state.origin.get((kind, name))
            if owner is not None:
                raise DuplicateNameError(
                    f"{kind} {name!r} is registered by both {owner!r} and {info.distribution!r}; "
                    f"uninstall one of them or set {ALLOW_LIST_ENV} to choose"
                )
            state.origin[(kind, name)] = info.distribution

        def register_models(cls: type, name: str | None = None) -> None:
            name = name or cls.__name__
            claim("model type", name)
            state.models[name] = cls

        def register_datasets(build: Callable[..., Any], name: str | None = None) -> None:
            name = name or build.__name__
            claim("dataset type", name)
            state.datasets[name] = build

        def register_experts(spec: ExpertSpec) -> None:
            if not isinstance(spec, ExpertSpec):
                raise PluginError(f"register_experts expects an ExpertSpec, got {type(spec).__name__}")
            claim("expert", spec.name)
            state.experts[spec.name] = dataclasses.replace(spec, distribution=info.distribution)

        def register_retouch_ops(spec: RetouchOpSpec) -> None:
            if not isinstance(spec, RetouchOpSpec):
                raise PluginError(f"register_retouch_ops expects a RetouchOpSpec, got {type(spec).__name__}")
            claim("retouch op", f"{spec.name}/{spec.api}")
            apis = state.retouch_ops.setdefault(spec.name, {})
            apis[spec.api] = dataclasses.replace(spec, distribution=info.distribution)

        def register_landmark_providers(spec: LandmarkProviderSpec) -> None:
            claim("landmark provider", spec.name)
            state.landmark_providers[spec.name] = dataclasses.replace(spec, distribution=info.distribution)

        return locals()[hook_name]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        from mofrr_core import __version__

        return __version__


_STATE: PluginState | None = None


def get_state(reload: bool = False) -> PluginState:
    """The loaded plugin state (loaded once per process; ``reload=True`` to rescan)."""
    global _STATE
    if _STATE is None or reload:
        _STATE = PluginManager().load()
    return _STATE


def reset() -> None:
    """Forget loaded plugins (tests, or after installing a package at run time)."""
    global _STATE
    _STATE = None


def get_experts() -> dict[str, ExpertSpec]:
    """Registered experts by name."""
    return dict(get_state().experts)


def get_expert(name: str) -> ExpertSpec:
    experts = get_state().experts
    if name not in experts:
        known = ", ".join(sorted(experts)) or "none installed"
        raise UnknownTypeError(f"unknown expert {name!r} (registered: {known}); install its package, "
                               f"e.g. pip install mofrr-expert-{name}")
    return experts[name]


def get_retouch_ops() -> dict[str, dict[str, RetouchOpSpec]]:
    """Registered retouching operations: ``{op name: {api: spec}}``."""
    return {name: dict(apis) for name, apis in get_state().retouch_ops.items()}


def get_landmark_providers() -> dict[str, LandmarkProviderSpec]:
    """Registered landmark providers by name."""
    return dict(get_state().landmark_providers)


def _resolve(registered: dict[str, Any], name: str, where: str, kind: str) -> Any:
    if name not in registered:
        known = ", ".join(sorted(registered)) or "none"
        raise UnknownTypeError(f"{where}: unknown {kind} {name!r} (registered {kind}s: {known})")
    return registered[name]


def resolve_model_type(name: str, where: str = "type") -> type:
    """The network class registered as ``name``; the error names ``where`` it was asked for."""
    return _resolve(get_state().models, name, where, "type")


def resolve_dataset_type(name: str, where: str = "data.type") -> Callable[..., Any]:
    """The training data builder registered as ``name`` (``register_datasets``)."""
    return _resolve(get_state().datasets, name, where, "dataset type")
