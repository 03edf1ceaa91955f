"""The MoFRR pipeline: router -> activated specialised experts + shared expert -> Combine Module."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from mofrr_core import __version__
from mofrr_core.gate_decisions import GateDecisions, router_types
from mofrr_core.inputs import check_images, check_per_face, check_pipeline_call
from mofrr_core.models.combine import cap_change, high_pass_change, low_frequency_sigmas, only_types_ran
from mofrr_core.models.outputs import ExpertRun, PipelineOutput
from mofrr_core.models.router import explain_away, shift_logits
from mofrr_core.plugins import resolve_model_type
from mofrr_core.registry import (
    ComponentConfig,
    RegistryConfig,
    WeightsError,
    build_component,
    load_registry,
    sha256_of,
    weight_file,
    with_available_experts,
)
from mofrr_core.router_view import JPEG_GRID, NATIVE_SCALE_RANGE
from mofrr_core.utils.image import (
    ImageLike,
    add_residual,
    convert_output,
    resize,
    to_tensor_list,
    to_working_resolution,
)

INDEX_FILE = "model_index.json"


@dataclass
class ExpertSlot:
    """A specialised expert in the pipeline, the retouching type (router gate) it answers to, and the share
    of its change the pipeline keeps (``x + strength * (expert(x) - x)``; registry ``strength:``)."""

    name: str
    retouch_type: str
    model: nn.Module
    strength: float = 1.0


class Pipeline(GateDecisions):
    """MoFRR (eqs. 1-2): ``Y = Combine([X, Y_se, Y_M for activated M])``.

    Images are processed at ``resolution``; the restoration residual is upsampled back to each
    input's own size and added to it, so untouched detail of a larger input is kept.
    """

    def __init__(self, router: nn.Module, experts: Sequence[ExpertSlot], shared: nn.Module | None,
                 combine: nn.Module, resolution: int = 256, threshold: float = 0.5,
                 num_inference_steps: int = 10, seed: int = 0,
                 weights: dict[str, str] | None = None, passthrough_untouched: bool = False,
                 crop_size: int | None = None, alignment: str = "similarity", router_crop: str = "shared",
                 router_context_types: Sequence[str] = (), gate_blend: str = "hard",
                 router_native_range: Sequence[float] | None = None, change_cap: float | None = None,
                 confounded_gates: dict[str, dict[str, float]] | None = None,
                 keep_low_frequencies: dict[str, float] | None = None, skip_combine: Sequence[str] = (),
                 grid_gates: dict[str, float] | None = None, undo_enlargement: bool = False,
                 grid_native: dict[str, Any] | None = None) -> None:
        self.router = router
        self.experts = list(experts)
        self.shared = shared
        self.combine = combine
        self.resolution = resolution
        self.threshold = threshold
        self.num_inference_steps = num_inference_steps
        self.seed = seed
        self.passthrough_untouched = passthrough_untouched  # no gate fires: the face is returned as it came
        self.crop_size = crop_size  # side of the face crops whole-photo mode aligns (None: resolution)
        self.alignment = alignment  # how whole-photo mode aligns a face: "similarity" or "upright" (faces.py)
        self.router_crop = router_crop  # whole-photo mode: what the router reads (mofrr_core.router_view)
        self.router_context_types = tuple(router_context_types)  # gates that read a close-up face resized
        # router_crop native: the face sizes (box over the router's size) read from the photo's own pixels
        self.router_native_range = tuple(router_native_range or NATIVE_SCALE_RANGE)
        self.grid_native = grid_native  # {range, gates}: smaller faces of a photo saved at its size (router_view)
        self.gate_blend = gate_blend  # "posterior": an expert's change kept in proportion to its gate's probability
        self.change_cap = change_cap  # the Combine Module's change at most this times the experts' (models.combine)
        self.confounded_gates = dict(confounded_gates or {})  # gate a fires: gate b needs confidence > [a][b]
        self.grid_gates = dict(grid_gates or {})  # a native view that keeps its JPEG grid: gate b needs > [b]
        self.undo_enlargement = undo_enlargement  # an enlarged JPEG photo: the router reads it at its saved size
        self.keep_low_frequencies = dict(keep_low_frequencies or {})  # type -> sigma (models.combine)
        self.skip_combine = tuple(skip_combine)  # one of these experts alone, nothing else likely: its own output
        for key, named in (("router_context_types", self.router_context_types), ("grid_gates", self.grid_gates),
                           ("grid_native.gates", (grid_native or {}).get("gates", ())),
                           ("confounded_gates", {t for a, bars in self.confounded_gates.items() for t in (a, *bars)}),
                           ("keep_low_frequencies", self.keep_low_frequencies), ("skip_combine", self.skip_combine)):
            if unknown := set(named) - set(router_types(router)):
                raise ValueError(f"{key}: the router has no gate for {', '.join(sorted(unknown))}")
        self.weights = dict(weights or {})  # component key -> sha256 of its weights, or "untrained"
        for module in self.modules().values():
            module.eval().requires_grad_(False)

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_registry(cls, path: str | Path | RegistryConfig | None = None, experts: list[str] | None = None,
                      device: str | torch.device | None = None, allow_untrained: bool = False) -> Pipeline:
        """Build the pipeline a ``registry.yaml`` describes (default: the packaged one); an expert whose package
        ships no weights is skipped with a warning, or built untrained (identity at init) with ``allow_untrained``."""
        config = path if isinstance(path, RegistryConfig) else load_registry(path, experts=experts)
        config = with_available_experts(config, allow_untrained)
        weights: dict[str, str] = {}

        def build(component: ComponentConfig, **overrides: Any) -> nn.Module:
            weights[component.key] = (sha256_of(weight_file(component.weights))
                                      if component.weights is not None else "untrained")
            return build_component(component, **overrides)

        types = [e.spec.retouch_type for e in config.specialised]
        router = build(config.router, **({} if config.router.weights else {"types": types}))
        slots = []
        for entry in config.specialised:
            slots.append(ExpertSlot(entry.name, entry.spec.retouch_type, build(entry.component), entry.strength))
            if entry.spec.gate is not None and entry.spec.retouch_type not in router_types(router):
                gate = resolve_model_type("GateHead", f"experts.{entry.name}.gate").from_pretrained(
                    entry.spec.gate)
                router.add_gate(entry.spec.retouch_type, gate)
        shared = build(config.shared.component) if config.shared is not None else None
        pipeline = cls(router, slots, shared, build(config.combine), config.resolution,
                       config.threshold, config.num_inference_steps, config.seed, weights,
                       config.passthrough_untouched, config.crop_size, config.alignment, config.router_crop,
                       config.router_context_types, config.gate_blend, config.router_native_range, config.change_cap,
                       config.confounded_gates, config.keep_low_frequencies, config.skip_combine, config.grid_gates,
                       config.undo_enlargement, config.grid_native)
        return pipeline.to(device) if device is not None else pipeline

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device | None = None) -> Pipeline:
        """Load a pipeline written by :meth:`save_pretrained`."""
        directory = Path(directory)
        index_path = directory / INDEX_FILE
        if not index_path.is_file():
            raise FileNotFoundError(f"not a MoFRR pipeline folder (no {INDEX_FILE}): {directory}")
        index = json.loads(index_path.read_text())

        def load(key: str, type_name: str, sub: str) -> nn.Module:
            return resolve_model_type(type_name, where=f"{INDEX_FILE}: {key}").from_pretrained(directory / sub)

        slots = [ExpertSlot(e["name"], e["retouch_type"], load(e["name"], e["type"], f"experts/{e['name']}"),
                            e.get("strength", 1.0)) for e in index["experts"]]
        shared = load("shared", index["shared"]["type"], "shared") if index.get("shared") else None
        pipeline = cls(load("router", index["router"], "router"), slots, shared,
                       load("combine", index["combine"], "combine"), **index["config"],
                       weights=index.get("weights"))
        return pipeline.to(device) if device is not None else pipeline

    def save_pretrained(self, directory: str | Path) -> None:
        """Write every network (safetensors + config.json) and a ``model_index.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.router.save_pretrained(directory / "router")
        self.combine.save_pretrained(directory / "combine")
        for slot in self.experts:
            slot.model.save_pretrained(directory / "experts" / slot.name)
        if self.shared is not None:
            self.shared.save_pretrained(directory / "shared")
        index = {
            "_class_name": type(self).__name__,
            "_mofrr_version": __version__,
            "router": type(self.router).__name__,
            "combine": type(self.combine).__name__,
            "experts": [{"name": s.name, "retouch_type": s.retouch_type, "type": type(s.model).__name__,
                         "strength": s.strength} for s in self.experts],
            "shared": {"type": type(self.shared).__name__} if self.shared is not None else None,
            "config": {"resolution": self.resolution, "threshold": self.threshold,
                       "num_inference_steps": self.num_inference_steps, "seed": self.seed,
                       "passthrough_untouched": self.passthrough_untouched, "crop_size": self.crop_size,
                       "alignment": self.alignment, "router_crop": self.router_crop,
                       "router_context_types": list(self.router_context_types), "gate_blend": self.gate_blend,
                       "router_native_range": list(self.router_native_range), "change_cap": self.change_cap,
                       "confounded_gates": self.confounded_gates, "keep_low_frequencies": self.keep_low_frequencies,
                       "skip_combine": list(self.skip_combine), "grid_gates": self.grid_gates,
                       "undo_enlargement": self.undo_enlargement, "grid_native": self.grid_native},
            "weights": self.weights,
        }
        (directory / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")

    # -- device handling -------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        modules = {"router": self.router, "combine": self.combine}
        modules.update({f"experts.{s.name}": s.model for s in self.experts})
        if self.shared is not None:
            modules["shared"] = self.shared
        return modules

    def to(self, device: str | torch.device) -> Pipeline:
        for module in self.modules().values():
            module.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.combine.parameters()).device

    # -- inference ----------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, images: ImageLike | Sequence[ImageLike], num_inference_steps: int | None = None,
                 seed: int | None = None, generator: torch.Generator | None = None,
                 active: Literal["router", "all", "none"] | Sequence[str] = "router",
                 use_shared: bool = True, output_type: Literal["pil", "np", "pt"] = "pil",
                 router_images: ImageLike | Sequence[ImageLike] | None = None,
                 gate_images: dict[str, Sequence[ImageLike | None]] | None = None,
                 router_views: Sequence[str] | None = None, router_grids: Sequence[bool] | None = None
                 ) -> PipelineOutput:
        """Restore a batch of face crops.

        ``active`` chooses the specialised experts: ``"router"`` (eq. 1), ``"all"`` (ablation
        "w/o router"), ``"none"``, or an explicit list of expert names. ``router_images``: the same faces
        as the router should read them (whole-photo mode cuts them at :attr:`router_size`); default: ``images``.
        ``gate_images``: per router type, the face that type's gate reads instead, per image (``None``: the
        router image); whole-photo mode gives the context gates a close-up face resized, the ``grid_native`` gates a
        smaller face's own pixels (:mod:`.router_view`). ``router_views``: per image, how the router read it
        (``router_view.ROUTER_VIEWS``): a router calibrated per view (``view_gate_offsets``) judges each face with its
        view's gate offsets, and prints its probabilities with the view's rescaling (``view_calibration``;
        :mod:`.gate_decisions`). ``router_grids``: per image, whether its native view kept the photo's JPEG grid
        (registry ``grid_gates``; :func:`~mofrr_core.jpeg_grid.jpeg_grid_strength`).
        """
        images, num_inference_steps, seed = check_pipeline_call(images, num_inference_steps, seed, output_type)
        router_images = None if router_images is None else check_images(router_images)
        router_images = check_per_face("router_images", router_images, len(images))
        router_grids = check_per_face("router_grids", router_grids, len(images))
        steps = num_inference_steps or self.num_inference_steps
        if generator is None:
            generator = torch.Generator(self.device).manual_seed(self.seed if seed is None else seed)

        # 1. Bring the inputs to the working resolution.
        originals, x = to_working_resolution(images, self.resolution, self.device)

        # 2. Router: which retouching types are present (eq. 1), on the face at the router's own size.
        router_faces = None if router_images is None else [t.to(self.device) for t in to_tensor_list(router_images)]
        probabilities = self.reroute(self.route(self.router_input(originals, x, router_faces)), gate_images)
        offsets = self.face_offsets(len(originals), router_views)
        probabilities = shift_logits(probabilities, offsets - self.gate_offsets().to(offsets))
        mask = self.activation_mask(probabilities, active, router_grids)
        rows = self.rows_to_restore(mask, active).nonzero().flatten()

        # 3-5. The activated specialised experts and the shared expert restore; the Combine Module fuses
        #      X, Y_se and the activated Y_M (eq. 2). Images not to restore keep X.
        use_shared = use_shared and self.shared is not None
        confidence = self.expert_confidence(probabilities) if active == "router" else mask.to(x.dtype)
        reported = self.reported_probabilities(probabilities, offsets, router_views)
        blend = self.expert_blend(reported, active)
        restored, degrees, kept, alone = x.clone(), [{} for _ in originals], [0.0] * len(originals), set()
        if rows.numel():
            run = self.run_experts(x[rows], mask[rows], steps, generator, use_shared, blend[rows])
            combined = self.combine(x[rows], run.shared, run.images, mask[rows], confidence[rows])
            ran = [[slot.retouch_type for slot, on in zip(self.experts, row) if on] for row in mask[rows].tolist()]
            restored[rows], sigma, solo = self.bound(x[rows], combined, run.images, ran, reported[rows])
            for row, estimate, value, by_itself in zip(rows.tolist(), run.degrees, sigma.tolist(), solo):
                degrees[row], kept[row] = estimate, value
                if by_itself:
                    alone.add(row)

        # 6. Add the restoration residual back at each input's own size.
        outputs = add_residual(originals, x, restored)
        types, restored_rows, shared = router_types(self.router), set(rows.tolist()), ["shared"] if use_shared else []
        return PipelineOutput(
            images=[convert_output(o, output_type) for o in outputs],
            probabilities=[{t: round(float(p), 4) for t, p in zip(types, row)} for row in reported.tolist()],
            experts_run=[[s.name for k, s in enumerate(self.experts) if mask[i, k]] + (shared if i not in alone else [])
                         if i in restored_rows else [] for i in range(len(originals))],
            degrees=degrees, thresholds=self.gate_thresholds, low_frequency_sigmas=kept,
            face_thresholds=self.face_thresholds(offsets, router_views))

    def bound(self, x: torch.Tensor, combined: torch.Tensor, expert_images: torch.Tensor,
              ran: Sequence[Sequence[str]], reported: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[bool]]:
        """The registry's bounds on the Combine Module's output for faces ``x`` (``ran``: per face, the types of the
        specialised experts that ran; ``expert_images [B, K, 3, H, W]``): ``skip_combine`` (one such expert ran and
        no other type is likely: its own output), ``change_cap``, then ``keep_low_frequencies`` (models.combine).
        Returns the restored faces, the blur per face (0: none) and, per face, whether its expert's output stood."""
        types = router_types(self.router)
        solo = only_types_ran(ran, reported, types, self.skip_combine, self.threshold, single=True)
        if any(solo):
            own = x + (expert_images - x[:, None]).sum(dim=1)  # the expert's output where only one ran
            combined = torch.where(torch.tensor(solo, device=x.device).view(-1, 1, 1, 1), own, combined)
        capped = cap_change(x, combined, expert_images, self.change_cap)
        sigma = low_frequency_sigmas(ran, reported, types, self.keep_low_frequencies, self.threshold)
        return high_pass_change(x, capped, sigma.to(x.device)).clamp(-1, 1), sigma, solo

    def run_experts(self, x: torch.Tensor, mask: torch.Tensor, num_inference_steps: int,
                    generator: torch.Generator | None, use_shared: bool = True,
                    blend: torch.Tensor | None = None) -> ExpertRun:
        """Run each specialised expert on the rows of ``x`` that ``mask [B, K]`` routes to it, then the
        shared expert on all of ``x`` (the one loop of inference and of the Combine stage's cache).
        ``blend [B, K]``: the share of each expert's change kept on each row, on top of its ``strength``."""
        images = x[:, None].repeat(1, len(self.experts), 1, 1, 1)
        degrees: list[dict[str, float]] = [{} for _ in range(x.shape[0])]
        for k, slot in enumerate(self.experts):
            rows = mask[:, k].nonzero().flatten()
            if rows.numel() == 0:
                continue
            out = slot.model.restore(x[rows], num_inference_steps=num_inference_steps, generator=generator)
            share = slot.strength if blend is None else slot.strength * blend[rows, k].view(-1, 1, 1, 1)
            images[rows, k] = torch.lerp(x[rows], out.image, share)  # exact at share 1
            if out.degree is not None:
                for row, degree in zip(rows.tolist(), out.degree.tolist()):
                    degrees[row][slot.name] = round(float(degree), 3)
        shared = x
        if use_shared and self.shared is not None:
            shared = self.shared.restore(x, num_inference_steps=num_inference_steps, generator=generator).image
        return ExpertRun(images, shared, degrees)

    @property
    def face_crop_size(self) -> int:
        """Side of the face crops whole-photo mode aligns: ``crop_size`` (registry), else the working resolution
        (the experts' input; the restoration residual is brought back to the crop's size)."""
        return self.crop_size or self.resolution

    @property
    def router_size(self) -> int:
        """Side of the faces the router reads: ``router.face_size`` (fine detail), else the working resolution."""
        return getattr(self.router, "face_size", None) or self.resolution

    def router_input(self, originals: Sequence[torch.Tensor], x: torch.Tensor | None,
                     router_faces: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """The faces at :attr:`router_size`: ``router_faces`` if given, else the inputs (``x`` itself when the
        router reads the working resolution)."""
        size = self.router_size
        if router_faces is None and x is not None and size == x.shape[-1]:
            return x
        faces = originals if router_faces is None else router_faces
        return torch.cat([resize(t[None], (size, size)) for t in faces]).clamp(-1, 1)

    def reroute(self, probabilities: torch.Tensor, gate_images: dict[str, Sequence[ImageLike | None]] | None
                ) -> torch.Tensor:
        """``probabilities`` with each ``gate_images`` type's column taken from the router on that gate's own
        image of a face, where the face has one."""
        types = router_types(self.router)
        for name, images in (gate_images or {}).items():
            if name not in types or len(images) != probabilities.shape[0]:
                raise ValueError(f"gate_images[{name!r}]: expected a gate of the router and "
                                 f"{probabilities.shape[0]} images or None, got {len(images)}")
            rows = [i for i, image in enumerate(images) if image is not None]
            if rows:
                faces = [t.to(self.device) for t in to_tensor_list(check_images([images[i] for i in rows]))]
                column = types.index(name)
                probabilities[rows, column] = self.route(self.router_input(faces, None, faces))[:, column]
        return probabilities

    def rows_to_restore(self, mask: torch.Tensor, active: Literal["router", "all", "none"] | Sequence[str]
                        ) -> torch.Tensor:
        """``[B]`` bool: the images to restore. With ``passthrough_untouched``, an image on which the router
        fires no gate is returned exactly as it came (do no harm on untouched faces); else every image."""
        if self.passthrough_untouched and active == "router":
            return mask.any(dim=1)
        return torch.ones(mask.shape[0], dtype=torch.bool, device=mask.device)

    def route(self, x: torch.Tensor) -> torch.Tensor:
        """The gates' decision probabilities ``[B, N]`` over the router's types (a gate fires above
        ``threshold``; a calibrated gate offset is included, see :meth:`reported_probabilities`)."""
        return torch.sigmoid(self.router(x))

    def activation_mask(self, probabilities: torch.Tensor, active: Literal["router", "all", "none"] | Sequence[str],
                        grids: Sequence[bool] | None = None) -> torch.Tensor:
        """``[B, K]`` bool: which specialised expert runs on which image (``grids``: see ``router_grids``)."""
        batch, experts = probabilities.shape[0], len(self.experts)
        if active == "all":
            return torch.ones(batch, experts, dtype=torch.bool, device=probabilities.device)
        if active == "none":
            return torch.zeros(batch, experts, dtype=torch.bool, device=probabilities.device)
        if active != "router":
            unknown = set(active) - {s.name for s in self.experts}
            if unknown:
                raise ValueError(f"active: unknown expert(s) {sorted(unknown)}")
            row = torch.tensor([s.name in active for s in self.experts], device=probabilities.device)
            return row[None].repeat(batch, 1)
        confidence = self.expert_confidence(probabilities)
        fired = dict(zip(router_types(self.router), (probabilities > self.threshold).unbind(1)))
        if grids is not None:  # a view that kept its JPEG grid asks the grid_gates for more confidence
            fired[JPEG_GRID] = torch.tensor(list(grids), dtype=torch.bool, device=probabilities.device)
        types = [s.retouch_type for s in self.experts]
        return explain_away(confidence > self.threshold, confidence, types, fired,
                            {**self.confounded_gates, JPEG_GRID: self.grid_gates})

    def expert_blend(self, reported: torch.Tensor, active: Literal["router", "all", "none"] | Sequence[str]
                     ) -> torch.Tensor:
        """``[B, K]``: the share of each specialised expert's change kept (on top of its ``strength``). With
        ``gate_blend: posterior`` and the router deciding, its gate's calibrated probability (the reported one):
        if the expert's change is right where its type is present, that share minimises the expected squared
        error under a calibrated gate; a call near the threshold changes the face about half as much. Else 1."""
        if self.gate_blend == "posterior" and active == "router":
            return self.expert_confidence(reported)
        return reported.new_ones(reported.shape[0], len(self.experts))

    def expert_confidence(self, probabilities: torch.Tensor) -> torch.Tensor:
        """``[B, K]``: the router probability of each specialised expert's gate (1 for an expert with no gate)."""
        types = router_types(self.router)
        columns = [probabilities[:, types.index(s.retouch_type)] if s.retouch_type in types
                   else probabilities.new_ones(probabilities.shape[0])  # no gate: always on
                   for s in self.experts]
        return torch.stack(columns, dim=1) if columns else probabilities.new_zeros(probabilities.shape[0], 0)


def load_pipeline(source: str | Path | None = None, device: str | torch.device | None = None,
                  experts: str | Sequence[str] | None = None, allow_untrained: bool = False,
                  label: str = "--pipeline") -> Pipeline:
    """The pipeline ``source`` names: a :meth:`Pipeline.save_pretrained` folder, a ``registry.yaml``, or
    ``None`` (the packaged registry); on ``device`` (default: cuda if available, else cpu).

    ``experts`` (names, or one comma-separated string) and ``allow_untrained`` apply to a registry only (a
    saved folder holds its own experts, trained).
    A saved folder's ``pipeline.weights`` gets the sha256 of every ``.safetensors`` file actually loaded;
    a broken weight file raises :class:`~mofrr_core.registry.WeightsError`. Errors name ``label SOURCE``.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    names = experts
    if isinstance(experts, str):
        names = [e.strip() for e in experts.split(",") if e.strip()] if experts else None
    if source is not None and Path(source).is_dir():
        return load_saved_pipeline(Path(source), device, label)
    if source is not None and not Path(source).is_file():
        raise FileNotFoundError(f"{label} {source}: no such registry file or pipeline folder")
    return Pipeline.from_registry(source, experts=names, device=device, allow_untrained=allow_untrained)


def load_saved_pipeline(directory: Path, device: str | torch.device, label: str = "--pipeline") -> Pipeline:
    """:meth:`Pipeline.from_pretrained` with one-line errors and the weight files' sha256 in ``pipeline.weights``."""
    if not (directory / INDEX_FILE).is_file():
        raise FileNotFoundError(f"{label} {directory}: a folder but not a saved pipeline (no {INDEX_FILE})")
    try:
        pipeline = Pipeline.from_pretrained(directory, device=device)
    except FileNotFoundError:
        raise
    except Exception as error:  # noqa: BLE001 - the loader's message names the file
        raise WeightsError(f"{label} {directory}: could not load the pipeline: {str(error).strip()} -- a weight "
                           "file is missing, truncated or corrupt; re-create the folder with "
                           "Pipeline.save_pretrained (or copy it again)") from None
    pipeline.weights = {**pipeline.weights, **pipeline_file_hashes(directory, pipeline)}
    return pipeline


def pipeline_file_hashes(directory: Path, pipeline: Pipeline) -> dict[str, str]:
    """sha256 of each component's ``.safetensors`` file in a ``save_pretrained`` folder."""
    folders = {"router": "router", "combine": "combine"}
    folders.update({f"experts.{slot.name}": f"experts/{slot.name}" for slot in pipeline.experts})
    if pipeline.shared is not None:
        folders["shared"] = "shared"
    return {key: sha256_of(weight_file(Path(directory) / sub)) for key, sub in folders.items()}
