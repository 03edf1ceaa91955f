"""How each face's router gates decide, and what the forensic report prints of them.

A gate fires where its logit (after the router's temperature) plus its calibrated offset is above
``logit(threshold)``: the router's ``gate_offsets``, or those of the view whole-photo mode read the face in
(``view_gate_offsets``, :mod:`mofrr_core.router_view`). The report prints each gate's probability without the offset
(an offset moves a decision, not what a probability means), rescaled for the views whose gates read evidence the
temperature was not fitted on (``view_calibration``: Platt scaling), and per face the printed probability above
which each gate fires. :class:`GateDecisions` is the :class:`~mofrr_core.pipeline.Pipeline`'s part of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from mofrr_core.models.router import shift_logits


def router_types(router: nn.Module) -> list[str]:
    """The retouching types a router has gates for, in its output order."""
    return list(getattr(router, "types", None) or router.config.types)


def per_face(batch: int, views: Sequence[str | None] | None, of_view: Callable[[str | None], torch.Tensor]
             ) -> torch.Tensor:
    """``[B, ...]``: ``of_view(view)`` of each face's view (``views``: one per face; ``None``: no view known),
    computed once per view."""
    if views is not None and len(views) != batch:
        raise ValueError(f"router_views: expected {batch} views (one per face), got {len(views)}")
    views = list(views) if views is not None else [None] * batch
    by_view = {view: of_view(view).double() for view in {*views, None}}
    return torch.stack([by_view[v] for v in views]) if views else by_view[None].unsqueeze(0)[:0]  # no face: [0, ...]


class GateDecisions:
    """The gate offsets, printed probabilities and thresholds of a pipeline's ``router`` at its ``threshold``."""

    router: nn.Module
    threshold: float

    def gate_offsets(self, view: str | None = None) -> torch.Tensor:
        """``[N]``: each gate's calibrated logit offset (0 for a gate without one, or a router without any), for
        faces read in ``view`` (a router's ``view_gate_offsets``; ``None``: its ``gate_offsets``)."""
        offsets = getattr(self.router, "logit_offsets", None)
        if offsets is None:
            return torch.zeros(len(router_types(self.router)))
        return offsets(view) if view is not None else offsets()

    def gate_calibration(self, view: str | None = None) -> torch.Tensor:
        """``[2, N]``: the scale and bias of each gate's printed logit for faces read in ``view`` (a router's
        ``view_calibration``; scale 1 and bias 0 where it has none)."""
        calibration = getattr(self.router, "logit_calibration", None)
        if calibration is None:
            return torch.tensor([[1.0], [0.0]], dtype=torch.float64).expand(2, len(router_types(self.router)))
        return calibration(view)

    def face_offsets(self, batch: int, views: Sequence[str] | None = None) -> torch.Tensor:
        """``[B, N]``: the gate offsets each face is judged with, by its router view (``None``: no view known)."""
        return per_face(batch, views, self.gate_offsets)

    def reported_probabilities(self, probabilities: torch.Tensor, offsets: torch.Tensor | None = None,
                               views: Sequence[str] | None = None) -> torch.Tensor:
        """The calibrated probabilities the report prints: the decision ``probabilities`` without the gate offsets
        (``[B, N]`` per face, :meth:`face_offsets`; default the router's), which only move a gate's decision
        threshold (:attr:`gate_thresholds`), not what its probability means; Platt-rescaled for the faces whose
        ``views`` have a ``view_calibration``."""
        offsets = self.gate_offsets().double()[None] if offsets is None else offsets
        reported = shift_logits(probabilities, -offsets.to(probabilities.device))
        if views is None:
            return reported
        calibration = per_face(len(reported), views, self.gate_calibration)
        return shift_logits(reported, calibration[:, 1], calibration[:, 0])

    @property
    def gate_thresholds(self) -> dict[str, float]:
        """Per router type, the reported probability above which that gate fires: ``threshold`` moved by
        the gate's offset (``p_reported > t`` exactly when the decision probability is above ``threshold``)."""
        return self.view_gate_thresholds(None)

    def view_gate_thresholds(self, view: str | None) -> dict[str, float]:
        """:attr:`gate_thresholds` for faces the router read in ``view`` (``native``, ``resized``, ``native-grid``)."""
        return self.thresholds_from(self.gate_offsets(view).double().tolist(), view)

    def thresholds_from(self, offsets: Sequence[float], view: str | None = None) -> dict[str, float]:
        """Per router type, the reported probability a gate with these logit ``offsets`` fires above (for a face
        read in ``view``: its printed logits rescaled by the view's calibration, the threshold with them)."""
        base = torch.logit(torch.tensor(self.threshold, dtype=torch.float64))
        scales, biases = self.gate_calibration(view).tolist()
        return {t: float(torch.sigmoid((base - offset) * scale + bias))
                for t, offset, scale, bias in zip(router_types(self.router), offsets, scales, biases)}

    def face_thresholds(self, offsets: torch.Tensor, views: Sequence[str] | None = None) -> list[dict[str, float]]:
        """Per face, :meth:`thresholds_from` its row of ``offsets [B, N]`` in its view."""
        views = list(views) if views is not None else [None] * len(offsets)
        return [self.thresholds_from(row, view) for row, view in zip(offsets.tolist(), views)]

    def thresholds_for(self, types: Sequence[str], view: str | None = None) -> list[float]:
        """The gate thresholds (of faces read in ``view``) in the order of ``types`` (``threshold`` for a type
        without a gate)."""
        thresholds = self.view_gate_thresholds(view)
        return [thresholds.get(t, self.threshold) for t in types]
