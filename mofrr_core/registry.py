"""``registry.yaml``: which components form a pipeline, resolved through registered ``type:`` names.

A component entry (``router``, ``combine`` or one of ``experts``) has::

    type: WaveFRR            # a name registered through the register_models hook
    weights: path/or/pkg:... # a save_pretrained folder; relative paths are relative to the YAML
    sha256: <hex>            # optional: checksum of the folder's .safetensors file
    preset: cpu              # used (with a warning) when there are no weights: untrained model
    config: {...}            # optional constructor overrides for the preset; with weights, only the use_*
                             # on/off switches, which change no weight (e.g. use_refinement: false)

An expert entry may also set ``strength: 0.5`` (default 1): the share of its change the pipeline keeps,
``x + strength * (expert(x) - x)`` (docs/restore.md, "Expert strength").

Experts are listed by the name their plugin registered; the plugin's :class:`ExpertSpec`
provides defaults that the YAML entry may override.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mofrr_core.plugins import get_expert, resolve_model_type
from mofrr_core.spec import ExpertSpec

DEFAULT_REGISTRY = Path(__file__).with_name("registry.yaml")
GATE_BLENDS = ("hard", "posterior")  # how much of a routed expert's change the pipeline keeps (Pipeline)
PRESET_SECTIONS = {
    "Router": "router",
    "DegreeEstimator": "degree",
    "WaveFRR": "wavefrr",
    "SharedExpert": "shared_expert",
    "CombineModule": "combine",
}


class RegistryError(ValueError):
    """``registry.yaml`` is invalid; the message names the key (and path) at fault."""


class WeightsError(RuntimeError):
    """A weight folder is missing, truncated or does not match its sha256."""


@dataclass
class ComponentConfig:
    """One network of the pipeline as the registry describes it."""

    key: str
    type: str
    weights: Path | None = None
    sha256: str | None = None
    preset: str = "cpu"
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExpertEntry:
    """An expert of the pipeline: its plugin spec plus the network to build."""

    spec: ExpertSpec
    component: ComponentConfig
    strength: float = 1.0  # share of the expert's change the pipeline keeps (x + strength * (y - x))

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class RegistryConfig:
    """A parsed ``registry.yaml``."""

    path: Path | None
    router: ComponentConfig
    combine: ComponentConfig
    experts: list[ExpertEntry]
    resolution: int = 256
    threshold: float = 0.5
    num_inference_steps: int = 10
    seed: int = 0
    passthrough_untouched: bool = False
    crop_size: int | None = None  # whole-photo mode: side of the aligned face crops (None: resolution)
    alignment: str = "similarity"  # whole-photo mode: "similarity" or "upright" (mofrr_core.faces)
    router_crop: str = "shared"  # whole photos: the router reads the experts' crop, its "own" box or "native" pixels
    router_context_types: list[str] = field(default_factory=list)  # gates that read a close-up face resized
    gate_blend: str = "hard"  # "posterior": a routed expert's change is scaled by its gate's probability
    router_native_range: tuple[float, float] | None = None  # router_crop native: face sizes read unresized
    grid_native: dict[str, Any] | None = None  # {range, gates}: smaller faces of a photo saved as JPEG at its size
    change_cap: float | None = None  # the Combine Module's change at most this times the experts' (None: off)
    confounded_gates: dict[str, dict[str, float]] = field(default_factory=dict)  # gate a fires: b needs this
    grid_gates: dict[str, float] = field(default_factory=dict)  # a native view kept its JPEG grid: needs this
    keep_low_frequencies: dict[str, float] = field(default_factory=dict)  # type -> blur sigma (models.combine)
    skip_combine: list[str] = field(default_factory=list)  # one of these experts alone: its output, no Combine
    undo_enlargement: bool = False  # router_crop native: an enlarged JPEG photo read at its saved size (jpeg_grid)

    @property
    def specialised(self) -> list[ExpertEntry]:
        return [e for e in self.experts if e.spec.kind == "specialised"]

    @property
    def shared(self) -> ExpertEntry | None:
        return next((e for e in self.experts if e.spec.kind == "shared"), None)


def resolve_path(value: str | Path, base: Path | None) -> Path:
    """``pkg:package/sub/path`` -> inside an installed package; relative -> relative to ``base``."""
    text = str(value)
    if text.startswith("pkg:"):
        package, _, sub = text[4:].partition("/")
        return Path(str(resources.files(package))) / sub
    path = Path(text).expanduser()
    return path if path.is_absolute() or base is None else base / path


def weight_file(folder: Path) -> Path:
    """The single ``.safetensors`` file of a ``save_pretrained`` folder."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise WeightsError(f"no .safetensors file in {folder}")
    if len(files) > 1:
        raise WeightsError(f"several .safetensors files in {folder}: {', '.join(f.name for f in files)}")
    return files[0]


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_weights(component: ComponentConfig) -> Path | None:
    """Check that the component's weights exist (and match sha256); return the folder or ``None``."""
    if component.weights is None:
        return None
    folder = component.weights
    if not (folder / "config.json").is_file():
        raise WeightsError(f"{component.key}: weights not found: {folder} (expected config.json and a "
                           ".safetensors file from save_pretrained); train them with mofrr-train or fix "
                           "the path in registry.yaml")
    file = weight_file(folder)
    if component.sha256 and sha256_of(file) != component.sha256.lower():
        raise WeightsError(f"{component.key}: {file} does not match its sha256 in registry.yaml (file "
                           "truncated or modified); reinstall the package that ships it or retrain it")
    return folder


def weights_status(component: ComponentConfig) -> str:
    """``untrained`` (no weights configured), ``present``, ``missing``, or ``broken: <reason>``."""
    if component.weights is None:
        return "untrained"
    if not (component.weights / "config.json").is_file():
        return "missing"
    try:
        verify_weights(component)
    except WeightsError as error:
        return f"broken: {error}"
    return "present"


def _component(key: str, raw: Any, base: Path | None, defaults: ComponentConfig) -> ComponentConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RegistryError(f"{key}: expected a mapping, got {raw!r}")
    unknown = set(raw) - {"type", "weights", "sha256", "preset", "config", "name"}
    if unknown:
        raise RegistryError(f"{key}: unknown field(s) {', '.join(sorted(unknown))}")
    type_name = str(raw.get("type", defaults.type))
    resolve_model_type(type_name, where=f"{key}.type")  # fail early on unknown types
    weights = raw.get("weights", defaults.weights)
    return ComponentConfig(
        key=key,
        type=type_name,
        weights=resolve_path(weights, base) if weights is not None else None,
        sha256=raw.get("sha256", defaults.sha256),
        preset=str(raw.get("preset", defaults.preset)),
        config={**defaults.config, **(raw.get("config") or {})},
    )


def _expert(index: int, raw: Any, base: Path | None, only: set[str] | None) -> ExpertEntry | None:
    raw = {"name": raw} if isinstance(raw, str) else raw
    if not isinstance(raw, dict) or "name" not in raw:
        raise RegistryError(f"experts[{index}]: expected a name or a mapping with 'name', got {raw!r}")
    name = str(raw["name"])
    if only is not None and name not in only:
        return None
    try:
        spec = get_expert(name)
    except KeyError as error:
        if only is None:  # the default set: use what is installed
            warnings.warn(f"experts[{index}]: skipped: {error}", stacklevel=3)
            return None
        raise RegistryError(f"experts[{index}]: {error}") from None
    defaults = ComponentConfig(f"experts.{name}", spec.model_type, spec.weights, None, spec.preset,
                               dict(spec.config))
    strength = _number(raw, "strength", float, 1.0, f"experts.{name}.")
    if not 0 <= strength <= 1:
        raise RegistryError(f"experts.{name}.strength: must be between 0 and 1, got {strength}")
    component = {k: v for k, v in raw.items() if k != "strength"}
    return ExpertEntry(spec, _component(f"experts.{name}", component, base, defaults), strength)


def load_registry(path: str | Path | None = None, experts: list[str] | None = None) -> RegistryConfig:
    """Parse a registry file (default: the packaged ``registry.yaml``); ``experts`` restricts the set."""
    path = Path(path) if path is not None else DEFAULT_REGISTRY
    if not path.is_file():
        raise RegistryError(f"registry file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise RegistryError(f"{path}: invalid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise RegistryError(f"{path}: expected a mapping (router:, experts:, ...), got a {type(raw).__name__}")
    return parse_registry(raw, base=path.parent, path=path, experts=experts)


def _number(raw: dict[str, Any], key: str, kind: type, default: Any, section: str = "") -> Any:
    try:
        return kind(raw.get(key, default))
    except (TypeError, ValueError):
        raise RegistryError(f"{section}{key}: expected a number, got {raw.get(key)!r}") from None


def parse_registry(raw: dict[str, Any], base: Path | None = None, path: Path | None = None,
                   experts: list[str] | None = None) -> RegistryConfig:
    """Build a :class:`RegistryConfig` from an already-loaded mapping."""
    only = set(experts) if experts is not None else None
    entries = [e for i, r in enumerate(raw.get("experts") or []) if (e := _expert(i, r, base, only))]
    if only is not None:
        missing = only - {e.name for e in entries}
        for name in sorted(missing):  # experts asked for but not listed in the YAML: plugin defaults
            entry = _expert(len(entries), name, base, None)
            assert entry is not None
            entries.append(entry)
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise RegistryError(f"experts: listed twice: {sorted({n for n in names if names.count(n) > 1})}")
    if sum(e.spec.kind == "shared" for e in entries) > 1:
        raise RegistryError("experts: more than one shared expert listed")
    sampling = raw.get("sampling") or {}
    if not isinstance(sampling, dict):
        raise RegistryError(f"sampling: expected a mapping, got {sampling!r}")
    config = RegistryConfig(
        path=path,
        router=_component("router", raw.get("router"), base, ComponentConfig("router", "Router")),
        combine=_component("combine", raw.get("combine"), base, ComponentConfig("combine", "CombineModule")),
        experts=entries,
        resolution=_number(raw, "resolution", int, 256),
        threshold=_number(raw, "threshold", float, 0.5),
        num_inference_steps=_number(sampling, "num_inference_steps", int, 10, "sampling."),
        seed=_number(sampling, "seed", int, 0, "sampling."),
        passthrough_untouched=_flag(raw, "passthrough_untouched", False),
        crop_size=_number(raw, "crop_size", int, None) if raw.get("crop_size") is not None else None,
        alignment=str(raw.get("alignment", "similarity")),
        router_crop=str(raw.get("router_crop", "shared")),
        router_context_types=_names(raw, "router_context_types"),
        gate_blend=str(raw.get("gate_blend", "hard")),
        router_native_range=_native_range(raw),
        grid_native=_grid_native(raw),
        change_cap=_number(raw, "change_cap", float, None) if raw.get("change_cap") is not None else None,
        confounded_gates=_confounded_gates(raw),
        grid_gates=_grid_gates(raw),
        keep_low_frequencies=_low_frequencies(raw),
        skip_combine=_names(raw, "skip_combine"),
        undo_enlargement=_flag(raw, "undo_enlargement", False),
    )
    if config.resolution % 16:
        raise RegistryError(f"resolution: must be a multiple of 16, got {config.resolution}")
    if config.crop_size is not None and not 64 <= config.crop_size <= 1024:
        raise RegistryError(f"crop_size: must be between 64 and 1024 px, got {config.crop_size}")
    from mofrr_core.faces import ALIGNMENTS
    from mofrr_core.router_view import ROUTER_CROPS

    if config.alignment not in ALIGNMENTS:
        raise RegistryError(f"alignment: expected {' or '.join(ALIGNMENTS)}, got {config.alignment!r}")
    if config.router_crop not in ROUTER_CROPS:
        raise RegistryError(f"router_crop: expected one of {', '.join(ROUTER_CROPS)}, got {config.router_crop!r}")
    if config.gate_blend not in GATE_BLENDS:
        raise RegistryError(f"gate_blend: expected {' or '.join(GATE_BLENDS)}, got {config.gate_blend!r}")
    if config.change_cap is not None and not config.change_cap > 0:
        raise RegistryError(f"change_cap: must be positive, got {config.change_cap}")
    if not 0 < config.threshold < 1:
        raise RegistryError(f"threshold: must be in (0, 1), got {config.threshold}")
    return config


def _confounded_gates(raw: dict) -> dict[str, dict[str, float]]:
    """The registry's ``confounded_gates``: ``{type: {other type: confidence in (0, 1)}}`` (``{}``: off)."""
    value = raw.get("confounded_gates") or {}
    if not isinstance(value, dict) or not all(isinstance(bars, dict) for bars in value.values()):
        raise RegistryError(f"confounded_gates: expected {{type: {{type: confidence}}}}, got {value!r}")
    out = {str(cause): {str(other): _number(bars, other, float, None, f"confounded_gates.{cause}.")
                        for other in bars} for cause, bars in value.items()}
    for cause, bars in out.items():
        for other, bar in bars.items():
            if not 0 < bar < 1 or other == cause:
                raise RegistryError(f"confounded_gates.{cause}.{other}: expected a confidence in (0, 1) for "
                                    f"another type, got {bar}")
    return out


def _grid_gates(raw: dict) -> dict[str, float]:
    """The registry's ``grid_gates``: ``{type: confidence in (0, 1)}`` (``{}``: off)."""
    value = raw.get("grid_gates") or {}
    if not isinstance(value, dict):
        raise RegistryError(f"grid_gates: expected {{type: confidence}}, got {value!r}")
    out = {str(t): _number(value, t, float, None, "grid_gates.") for t in value}
    for name, bar in out.items():
        if not 0 < bar < 1:
            raise RegistryError(f"grid_gates.{name}: expected a confidence in (0, 1), got {bar}")
    return out


def _low_frequencies(raw: dict) -> dict[str, float]:
    """The registry's ``keep_low_frequencies``: ``{type: blur sigma in px, positive}`` (``{}``: off)."""
    value = raw.get("keep_low_frequencies") or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, (int, float))
                                              and not isinstance(v, bool) and v > 0 for k, v in value.items()):
        raise RegistryError(f"keep_low_frequencies: expected {{type: blur sigma in px, positive}}, got {value!r}")
    return {k: float(v) for k, v in value.items()}


def _grid_native(raw: dict) -> dict[str, Any] | None:
    """The registry's ``grid_native``: ``{range: [smallest, largest], gates: [type, ...]}`` (``None``: off)."""
    value = raw.get("grid_native")
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"range", "gates"} or value["range"] is None:
        raise RegistryError(f"grid_native: expected {{range: [smallest, largest], gates: [type, ...]}}, got {value!r}")
    return {"range": _native_range(value, "range", "grid_native."), "gates": _names(value, "gates", "grid_native.")}


def _native_range(raw: dict, key: str = "router_native_range", where: str = "") -> tuple[float, float] | None:
    """The registry's ``router_native_range`` (``None``: :data:`mofrr_core.router_view.NATIVE_SCALE_RANGE`), or
    another ``key`` read the same way, as ``(smallest, largest)``."""
    if raw.get(key) is None:
        return None
    from mofrr_core.router_view import check_native_range

    try:
        return check_native_range(raw[key], where + key)
    except ValueError as error:
        raise RegistryError(str(error)) from None


def _flag(raw: dict, key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise RegistryError(f"{key}: expected true or false, got {value!r}")
    return value


def _names(raw: dict, key: str, where: str = "") -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegistryError(f"{where}{key}: expected a list of retouching types, got {value!r}")
    return value


def with_available_experts(config: RegistryConfig, allow_untrained: bool) -> RegistryConfig:
    """Drop (with a warning) or mark untrained the experts whose weights are missing."""
    kept = []
    for entry in config.experts:
        if weights_status(entry.component) != "missing":
            kept.append(entry)
        elif allow_untrained:
            kept.append(replace(entry, component=replace(entry.component, weights=None)))
        else:
            warnings.warn(f"{entry.component.key}: skipped, its weights are missing ({entry.component.weights}); "
                          f"reinstall {entry.spec.distribution} or train it with mofrr-train --expert {entry.name}",
                          stacklevel=3)
    return replace(config, experts=kept)


def with_switches(model: Any, component: ComponentConfig) -> Any:
    """``model`` (loaded from trained weights) with the ``config:`` of its registry entry applied. On trained
    weights only the ``use_*`` on/off switches, which change no weight, may be set, e.g. ``use_refinement: false``
    (the ablation switches of docs/results.md, Table 4)."""
    if not component.config:
        return model
    bad = sorted(k for k, v in component.config.items() if not k.startswith("use_")
                 or not isinstance(model.config.get(k), bool) or not isinstance(v, bool))
    if bad:
        raise RegistryError(f"{component.key}.config: with trained weights only on/off switches (use_*: true or "
                            f"false) of the network may be set, not {', '.join(bad)}")
    return model.with_config(**component.config)


def build_component(component: ComponentConfig, **overrides: Any):
    """Load the component's weights, or build an untrained model from its preset (with a warning)."""
    cls = resolve_model_type(component.type, where=f"{component.key}.type")
    folder = verify_weights(component)
    if folder is not None:
        try:
            model = cls.from_pretrained(folder)
        except Exception as error:  # noqa: BLE001 - re-raised with the path that failed
            raise WeightsError(f"{component.key}: could not load {folder}: {error}") from error
        return with_switches(model, component)
    section = PRESET_SECTIONS.get(component.type)
    kwargs: dict[str, Any] = {}
    if section is not None:
        from mofrr_core.models.presets import load_preset

        kwargs = dict(load_preset(component.preset).get(section, {}))
    kwargs.update(component.config)
    kwargs.update(overrides)
    warnings.warn(f"{component.key}: no weights, using an untrained {component.type} "
                  f"(preset {component.preset!r}); restorers start at the identity", stacklevel=2)
    return cls(**kwargs)
