"""What ``mofrr eval`` compares: the MoFRR pipeline, its ablations and baselines, all called the same way.

A *method* is anything with ``__call__(images, num_inference_steps=, seed=, output_type="np") ->
PipelineOutput``: :class:`~mofrr_core.pipeline.Pipeline` itself, or :class:`SingleModelPipeline`
wrapping one restorer (a :class:`~mofrr_core.models.UNetBaseline`, the shared expert alone, one
WaveFRR alone).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from mofrr_core.pipeline import INDEX_FILE, Pipeline, PipelineOutput, add_residual, to_working_resolution
from mofrr_core.utils.image import ImageLike, tensor_to_pil, to_uint8

ABLATIONS = ("none", "no-router", "no-shared", "no-idem", "no-degree", "no-hfcam", "no-warp", "no-refine",
             "single-expert")
ABLATION_HELP = {
    "none": "the full pipeline (router-activated experts + shared expert + combine)",
    "no-router": "every specialised expert runs on every image (active='all')",
    "no-shared": "the shared expert is left out (use_shared=False)",
    "no-idem": "inference-time: WaveFRR's IDEM distortion map R is zeroed",
    "no-degree": "inference-time: WaveFRR's degree is the constant 3 instead of the estimator's",
    "no-hfcam": "inference-time: WaveFRR's high bands are passed through unrefined (HFCAM skipped)",
    "no-warp": "inference-time: the FlowWarp of the experts that have one is skipped (zero displacement field)",
    "no-refine": "inference-time: the Combine Module's refinement net is skipped (output = X + gate * (fused - X))",
    "single-expert": "one WaveFRR restores every image alone (no router, shared expert or combine)",
}
CONSTANT_DEGREE = 3.0  # the middle of 1..5: "degree unknown"
RestoreFn = Callable[..., PipelineOutput]


class SingleModelPipeline:
    """One restorer (anything with ``restore(x, num_inference_steps, generator) -> ExpertOutput``) as a pipeline.

    Same conventions as :class:`Pipeline`: images are processed at ``resolution`` and the restoration
    residual is added back at each input's own size; the starting noise of diffusion restorers is
    drawn from ``seed``.
    """

    def __init__(self, model: nn.Module, name: str, resolution: int = 256, num_inference_steps: int | None = None,
                 seed: int = 0, weights: dict[str, str] | None = None) -> None:
        self.model = model.eval().requires_grad_(False)
        self.name = name
        self.resolution = resolution
        self.num_inference_steps = num_inference_steps
        self.seed = seed
        self.weights = dict(weights or {})

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> SingleModelPipeline:
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, images: ImageLike | Sequence[ImageLike], num_inference_steps: int | None = None,
                 seed: int | None = None, generator: torch.Generator | None = None,
                 output_type: Literal["pil", "np", "pt"] = "pil", **_ignored: Any) -> PipelineOutput:
        """Restore a batch; pipeline-only keywords (``active``, ``use_shared``) are ignored."""
        steps = num_inference_steps or self.num_inference_steps
        if generator is None:
            generator = torch.Generator(self.device).manual_seed(self.seed if seed is None else seed)
        originals, x = to_working_resolution(images, self.resolution, self.device)
        out = self.model.restore(x, num_inference_steps=steps, generator=generator)
        outputs = add_residual(originals, x, out.image.clamp(-1, 1))
        degrees = ([{self.name: round(float(d), 3)} for d in out.degree.tolist()] if out.degree is not None
                   else [{} for _ in originals])
        convert = {"pt": lambda t: t.cpu(), "pil": tensor_to_pil, "np": to_uint8}[output_type]
        return PipelineOutput(images=[convert(o) for o in outputs], probabilities=[{} for _ in originals],
                              experts_run=[[self.name] for _ in originals], degrees=degrees)


@dataclass
class Method:
    """A named row of the evaluation tables."""

    name: str
    kind: Literal["mofrr", "ablation", "baseline"]
    restore: RestoreFn
    weights: dict[str, str] = field(default_factory=dict)
    description: str = ""


# -- baselines ---------------------------------------------------------------------------------------
GENERIC_FOLDERS = {"final", "best", "weights"}  # name a baseline by its run folder too: "WaveFRR (run/final)"
SHIPPED_BASELINE = Path(__file__).resolve().parent.parent / "weights" / "baseline"  # mofrr-train --stage baseline

def _folder_weights(folder: Path) -> dict[str, str]:
    from mofrr_core.registry import sha256_of, weight_file

    try:
        return {folder.name: sha256_of(weight_file(folder))}
    except Exception:  # noqa: BLE001 - provenance only
        return {folder.name: "unknown"}


def load_model_folder(folder: str | Path) -> nn.Module:
    """A ``save_pretrained`` folder of any registered model type (its ``config.json`` names the class)."""
    from mofrr_core.plugins import resolve_model_type

    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"not a save_pretrained folder (no config.json): {folder}")
    class_name = json.loads(config_path.read_text()).get("_class_name")
    if not class_name:
        raise ValueError(f"{config_path}: no _class_name, cannot tell which model type it is")
    return resolve_model_type(class_name, where=str(config_path)).from_pretrained(folder)


def load_baseline(spec: str, pipeline: Pipeline | None = None, preset: str = "cpu") -> Method:
    """A baseline by folder or name.

    - a ``Pipeline.save_pretrained`` folder (``model_index.json``): that whole pipeline;
    - a ``save_pretrained`` folder of a restorer (e.g. a trained :class:`UNetBaseline`);
    - ``shared``: the pipeline's shared expert alone;
    - the name of one of the pipeline's specialised experts: that WaveFRR alone;
    - ``unet``: the shipped trained UNetBaseline (``mofrr_core/weights/baseline``, same data and CPU
      budget as one expert, docs/weights.md);
    - ``unet-untrained``: an untrained UNetBaseline from ``preset`` (the identity; for wiring checks).
    """
    path = Path(spec)
    resolution = pipeline.resolution if pipeline is not None else 256
    steps = pipeline.num_inference_steps if pipeline is not None else None
    if path.is_dir():
        if (path / INDEX_FILE).is_file():
            other = Pipeline.from_pretrained(path, device=pipeline.device if pipeline is not None else None)
            return Method(path.name, "baseline", other, weights=dict(other.weights),
                          description=f"MoFRR pipeline from {path}")
        model = load_model_folder(path)
        if pipeline is not None:
            model.to(pipeline.device)
        label = path.name if path.name not in GENERIC_FOLDERS else f"{path.resolve().parent.name}/{path.name}"
        name = f"{type(model).__name__} ({label})"
        return Method(name, "baseline", SingleModelPipeline(model, name, resolution, steps,
                                                            weights=_folder_weights(path)),
                      weights=_folder_weights(path), description=f"{type(model).__name__} from {path}")
    if path.suffix or "/" in spec:
        raise FileNotFoundError(f"baseline {spec!r}: no such folder")
    if spec in ("shared", "shared-expert"):
        if pipeline is None or pipeline.shared is None:
            raise ValueError("baseline 'shared': the pipeline has no shared expert")
        weights = {"shared": pipeline.weights.get("experts.shared", pipeline.weights.get("shared", "unknown"))}
        return Method("Shared expert alone", "baseline",
                      SingleModelPipeline(pipeline.shared, "shared", resolution, steps, weights=weights),
                      weights=weights, description="the pipeline's shared expert without router or combine")
    if pipeline is not None and spec in {s.name for s in pipeline.experts}:
        slot = next(s for s in pipeline.experts if s.name == spec)
        weights = {f"experts.{spec}": pipeline.weights.get(f"experts.{spec}", "unknown")}
        return Method(f"{type(slot.model).__name__} '{spec}' alone", "baseline",
                      SingleModelPipeline(slot.model, spec, resolution, steps, weights=weights),
                      weights=weights, description=f"the pipeline's {spec} expert on every image")
    if spec in ("unet", "UNetBaseline") and (SHIPPED_BASELINE / "config.json").is_file():
        method = load_baseline(str(SHIPPED_BASELINE), pipeline, preset)
        method.name = "UNet baseline (trained, same budget)"
        return method
    if spec in ("unet", "UNetBaseline", "unet-untrained"):
        from mofrr_core.models.presets import build_model

        warnings.warn(f"baseline {spec!r}: untrained UNetBaseline (preset {preset!r}) = the identity; "
                      "train one with mofrr-train --stage baseline and pass its folder", stacklevel=2)
        model = build_model("baseline", preset)
        if pipeline is not None:
            model.to(pipeline.device)
        return Method("UNetBaseline (untrained)", "baseline",
                      SingleModelPipeline(model, "unet", resolution, steps, weights={"unet": "untrained"}),
                      weights={"unet": "untrained"}, description="untrained UNetBaseline (identity)")
    known = ["shared", "unet", "unet-untrained"] + ([s.name for s in pipeline.experts] if pipeline is not None else [])
    raise ValueError(f"unknown baseline {spec!r}: give a save_pretrained folder or one of {', '.join(known)}")


# -- ablations ---------------------------------------------------------------------------------------
def _is_wavefrr(model: nn.Module) -> bool:
    return all(hasattr(model, attr) for attr in ("idem", "estimate_degree", "refine_highs"))


@contextmanager
def _patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    """Set an instance attribute for the duration of the block (shadowing the class method)."""
    had = name in vars(obj)
    old = vars(obj).get(name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had:
            setattr(obj, name, old)
        else:
            delattr(obj, name)


def _zero_distortion(x_ll: torch.Tensor, y_t: torch.Tensor, z: torch.Tensor, t: torch.Tensor):
    zeros = torch.zeros_like(x_ll)
    return torch.cat([x_ll, zeros], dim=1), zeros


@contextmanager
def wavefrr_ablation(model: nn.Module, name: str) -> Iterator[None]:
    """Inference-time ablation of one trained WaveFRR: ``no-idem`` (R = 0), ``no-degree`` (z = 3),
    ``no-hfcam`` (high bands unrefined), ``no-warp`` (no FlowWarp). The model is restored when the block exits."""
    if name == "no-idem":
        with _patched(model.idem, "forward", _zero_distortion):
            yield
    elif name == "no-degree":
        def constant_degree(x: torch.Tensor) -> torch.Tensor:
            return torch.full((x.shape[0],), CONSTANT_DEGREE, device=x.device, dtype=x.dtype)

        with _patched(model, "estimate_degree", constant_degree):
            yield
    elif name == "no-hfcam":
        with _patched(model, "refine_highs", lambda y_ll, highs: list(highs)):
            yield
    elif name == "no-warp":
        with _patched(model, "unwarp", lambda x, z: x):
            yield
    else:
        raise ValueError(f"not a WaveFRR ablation: {name!r} (no-idem, no-degree, no-hfcam, no-warp)")


@contextmanager
def without_refinement(combine: nn.Module) -> Iterator[None]:
    """Skip a :class:`~mofrr_core.models.combine.CombineModule`'s refinement net for the block (ablation
    ``no-refine``); the net is put back when the block exits."""
    refine = getattr(combine, "refine", None)
    if refine is None:
        raise ValueError(f"ablation no-refine: the Combine Module ({type(combine).__name__}) has no refinement net")
    combine.refine = None
    try:
        yield
    finally:
        combine.refine = refine


class AblatedPipeline:
    """A pipeline called under an ablation: fixed call options and/or WaveFRR patches during each call."""

    def __init__(self, pipeline: Pipeline, name: str, call_kwargs: dict[str, Any] | None = None) -> None:
        self.pipeline = pipeline
        self.name = name
        self.call_kwargs = dict(call_kwargs or {})
        patch = name in ("no-idem", "no-degree", "no-hfcam", "no-warp")
        self.targets = [s.model for s in pipeline.experts if _is_wavefrr(s.model)] if patch else []
        if name == "no-warp":
            self.targets = [m for m in self.targets if getattr(m, "flow_warp", None) is not None]
            if not self.targets:
                raise ValueError("ablation no-warp: no expert of the pipeline has a FlowWarp (warp: true)")
        elif patch:
            skipped = [s.name for s in pipeline.experts if not _is_wavefrr(s.model)]
            if skipped:
                warnings.warn(f"ablation {name}: expert(s) {', '.join(skipped)} are not WaveFRR; left unchanged",
                              stacklevel=3)
            if not self.targets:
                raise ValueError(f"ablation {name}: the pipeline has no WaveFRR expert to ablate")

    @property
    def experts(self):
        return self.pipeline.experts

    def __call__(self, images: ImageLike | Sequence[ImageLike], **kwargs: Any) -> PipelineOutput:
        with ExitStack() as stack:
            for model in self.targets:
                stack.enter_context(wavefrr_ablation(model, self.name))
            if self.name == "no-refine":
                stack.enter_context(without_refinement(self.pipeline.combine))
            return self.pipeline(images, **{**kwargs, **self.call_kwargs})


def ablation(pipeline: Pipeline, name: str, single_expert: str | None = None) -> Method:
    """The pipeline under ablation ``name`` (one of :data:`ABLATIONS`) as a :class:`Method`.

    ``no-router`` / ``no-shared`` are call options of the pipeline (``active="all"`` /
    ``use_shared=False``); ``no-idem`` / ``no-degree`` / ``no-hfcam`` / ``no-warp`` patch every WaveFRR expert
    during each call (inference-time ablations of the trained model: the paper retrains instead);
    ``no-refine`` skips the Combine Module's refinement net during each call (not in the paper);
    ``single-expert`` runs one WaveFRR alone (``single_expert``: an expert name or a
    ``save_pretrained`` folder; default the pipeline's first specialised expert).
    """
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r} (known: {', '.join(ABLATIONS)})")
    if name == "none":
        return Method("MoFRR", "mofrr", pipeline, dict(pipeline.weights), ABLATION_HELP[name])
    if name == "single-expert":
        if single_expert is None and not pipeline.experts:
            raise ValueError("ablation single-expert: the pipeline has no specialised expert")
        base = load_baseline(single_expert or pipeline.experts[0].name, pipeline)
        return Method(f"MoFRR single-expert: {base.name}", "ablation", base.restore, base.weights,
                      ABLATION_HELP[name])
    kwargs = {"no-router": {"active": "all"}, "no-shared": {"use_shared": False}}.get(name, {})
    return Method(f"MoFRR {name}", "ablation", AblatedPipeline(pipeline, name, kwargs), dict(pipeline.weights),
                  ABLATION_HELP[name])
