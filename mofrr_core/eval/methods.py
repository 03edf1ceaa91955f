"""What ``mofrr eval`` compares: the MoFRR pipeline, its ablations and baselines, all called the same way.

A *method* is anything with ``__call__(images, num_inference_steps=, seed=, output_type="np") ->
PipelineOutput``: :class:`~mofrr_core.pipeline.Pipeline` itself, or :class:`SingleModelPipeline`
wrapping one restorer (a :class:`~mofrr_core.models.UNetBaseline`, the shared expert alone, one
WaveFRR alone).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from mofrr_core.pipeline import INDEX_FILE, Pipeline, PipelineOutput
from mofrr_core.utils.image import ImageLike, add_residual, tensor_to_pil, to_uint8, to_working_resolution

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
EXPERT_SWITCHES = {"no-idem": "use_idem", "no-degree": "use_degree", "no-hfcam": "use_hfcam", "no-warp": "use_warp"}


def switched_off(pipeline: Pipeline, name: str) -> Pipeline:
    """``pipeline`` with the config switch of ablation ``name`` off: copies of the affected networks
    (:meth:`~mofrr_core.models.loading.MoFRRModel.with_config`), the other networks shared.

    ``no-idem`` / ``no-degree`` / ``no-hfcam`` / ``no-warp``: every expert having that switch (``no-warp``:
    and a FlowWarp); ``no-refine``: the Combine Module's ``use_refinement``.
    """
    combine, slots = pipeline.combine, list(pipeline.experts)
    if name == "no-refine":
        if getattr(combine, "refine", None) is None:
            raise ValueError(f"ablation no-refine: the Combine Module ({type(combine).__name__}) has no refinement net")
        combine = combine.with_config(use_refinement=False)
    else:
        switch = EXPERT_SWITCHES[name]
        targets = [s.name for s in slots if switch in getattr(s.model, "config", {})
                   and (name != "no-warp" or getattr(s.model, "flow_warp", None) is not None)]
        if name == "no-warp" and not targets:
            raise ValueError("ablation no-warp: no expert of the pipeline has a FlowWarp (warp: true)")
        skipped = [s.name for s in slots if switch not in getattr(s.model, "config", {})]
        if skipped and name != "no-warp":
            warnings.warn(f"ablation {name}: expert(s) {', '.join(skipped)} have no {switch}; left unchanged",
                          stacklevel=3)
        if not targets:
            raise ValueError(f"ablation {name}: the pipeline has no WaveFRR expert to ablate")
        slots = [replace(s, model=s.model.with_config(**{switch: False})) if s.name in targets else s for s in slots]
    return Pipeline(pipeline.router, slots, pipeline.shared, combine, pipeline.resolution, pipeline.threshold,
                    pipeline.num_inference_steps, pipeline.seed, pipeline.weights)


class AblatedPipeline:
    """A pipeline called with fixed call options (``no-router``: ``active="all"``, ``no-shared``:
    ``use_shared=False``)."""

    def __init__(self, pipeline: Pipeline, call_kwargs: dict[str, Any]) -> None:
        self.pipeline = pipeline
        self.call_kwargs = dict(call_kwargs)

    @property
    def experts(self):
        return self.pipeline.experts

    def __call__(self, images: ImageLike | Sequence[ImageLike], **kwargs: Any) -> PipelineOutput:
        return self.pipeline(images, **{**kwargs, **self.call_kwargs})


def ablation(pipeline: Pipeline, name: str, single_expert: str | None = None) -> Method:
    """The pipeline under ablation ``name`` (one of :data:`ABLATIONS`) as a :class:`Method`.

    ``no-router`` / ``no-shared`` are call options of the pipeline (``active="all"`` /
    ``use_shared=False``); ``no-idem`` / ``no-degree`` / ``no-hfcam`` / ``no-warp`` switch off that part of
    every WaveFRR expert (config switches of the trained model, see :func:`switched_off`: the paper retrains
    instead); ``no-refine`` switches off the Combine Module's refinement net (not in the paper);
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
    if name in ("no-router", "no-shared"):
        kwargs = {"no-router": {"active": "all"}, "no-shared": {"use_shared": False}}[name]
        restore = AblatedPipeline(pipeline, kwargs)
    else:
        restore = switched_off(pipeline, name)
    return Method(f"MoFRR {name}", "ablation", restore, dict(pipeline.weights), ABLATION_HELP[name])
