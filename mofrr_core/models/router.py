"""Router: a shared ResNet-style backbone and one independent gate head per retouching type.

Plug-in experts bring their own :class:`GateHead` (saved/loaded on its own) and attach it with
:meth:`Router.add_gate`; a new head is trained on the frozen backbone via :meth:`Router.features`
(see :meth:`GateHead.compute_loss`), so the existing heads never change.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence

import torch
from diffusers import ConfigMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .blocks import ResNetEncoder
from .forensics import ResidualEncoder
from .loading import MoFRRModel
from .losses import multilabel_loss


def explain_away(mask: torch.Tensor, confidence: torch.Tensor, types: Sequence[str],
                 fired: Mapping[str, torch.Tensor], confounded: Mapping[str, Mapping[str, float]]) -> torch.Tensor:
    """``mask [B, K]`` (which of the experts of ``types`` run) without the calls a confounding retouching explains:
    where the gate of a type ``a`` fired (``fired[a]``, ``[B]`` bool), the expert of each type ``b`` of
    ``confounded[a]`` stays on only with a ``confidence`` above ``confounded[a][b]`` (registry
    ``confounded_gates``: a smoothing wipes the JPEG block pattern that the face gate reads a warp by). Types
    without a gate or an expert are ignored; ``{}`` returns ``mask``."""
    kept = mask.clone()
    for cause, bars in confounded.items():
        for other, bar in bars.items():
            if cause in fired and other in types:
                k = types.index(other)
                kept[:, k] &= ~fired[cause] | (confidence[:, k] > bar)
    return kept


def shift_logits(probabilities: torch.Tensor, offsets: torch.Tensor, scales: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """``probabilities [B, N]`` with their logits multiplied by ``scales`` (default 1) and ``offsets`` added (both
    ``[B, N]`` or ``[N]``); an entry whose scale is 1 and offset 0 comes back exactly as it was."""
    offsets = offsets.to(device=probabilities.device, dtype=torch.float64).expand(probabilities.shape)
    scales = torch.ones_like(offsets) if scales is None else scales.to(offsets).expand(probabilities.shape)
    moved = (offsets != 0) | (scales != 1)
    if not moved.any():
        return probabilities
    shifted = torch.sigmoid(torch.logit(probabilities.double(), eps=1e-12) * scales + offsets).to(probabilities)
    return torch.where(moved, shifted, probabilities)


class GateHead(MoFRRModel, ConfigMixin):
    """Binary gate for one retouching type on the router's pooled features: ``[B, F] -> [B]`` logits.

    Args:
        in_features: router feature size (``Router.feature_dim``).
        hidden_features: hidden width of a 2-layer MLP (0: a single linear layer).
        backbone: fingerprint of the router backbone it was trained on (``Router.backbone_fingerprint``;
            ``None``: unknown). A gate reads that backbone's features; on another backbone it is meaningless.
    """

    @register_to_config
    def __init__(self, in_features: int = 128, hidden_features: int = 0, backbone: str | None = None) -> None:
        super().__init__()
        if hidden_features > 0:
            self.net: nn.Module = nn.Sequential(
                nn.Linear(in_features, hidden_features), nn.ReLU(), nn.Linear(hidden_features, 1)
            )
        else:
            self.net = nn.Linear(in_features, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)

    def compute_loss(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """BCE of this gate on (frozen) router features ``[B, F]`` and binary labels ``[B]``."""
        loss = multilabel_loss(self(features), labels)
        return loss, {"loss_gate": loss.item()}


class Router(MoFRRModel, ConfigMixin):
    """Multi-label retouching-type classifier (paper: ResNet-MAM); eq. 1 thresholds ``sigmoid`` at 0.5.

    Args:
        types: retouching types, one gate each, in output order.
        in_channels, base_channels, stage_blocks, input_size: backbone (see ``ResNetEncoder``); it sees
            the face resized to ``input_size``.
        gate_hidden: hidden width of every gate head (0: linear gates).
        residual_view: add a second view, fixed SRM high-pass residuals of the face at the resolution
            it is given (``residual_size``), encoded by its own small ResNet; the gates read both views.
        residual_size: the face size the residual view expects (the pipeline resizes faces to it).
        temperature: logits are divided by it (temperature scaling, fitted after training by
            ``mofrr-train calibrate``): honest probabilities, the same decisions at 0.5.
        gate_offsets: ``{type: offset}`` added to that gate's logit after the temperature, i.e. a gate's
            own threshold (``mofrr-train calibrate --max-false-calls``: a gate that flags too many untouched
            faces is made stricter); ``None``: every gate decides at 0.5.
        view_gate_offsets: ``{view: {type: offset}}``: the offsets for faces read in that view (whole-photo
            mode's ``native`` or ``resized``, :mod:`mofrr_core.router_view`), in place of ``gate_offsets`` for
            the types named (``mofrr-train calibrate --view``: a view that reads untouched faces worse keeps the
            same false-call budget). Applied by the pipeline, which knows each face's view; :meth:`forward`
            adds ``gate_offsets``.
        view_calibration: ``{view: {type: [scale, bias]}}``: for faces read in that view, the probability printed for
            that gate is ``sigmoid(scale * logit + bias)`` (``logit`` after the temperature, without offsets: Platt
            scaling, ``mofrr-train calibrate --view ... --recalibrate``), where the view reads evidence the
            temperature was not fitted on; its decision stays ``logit + offset > 0`` (the pipeline moves the
            printed threshold with it).
    """

    @register_to_config
    def __init__(
        self,
        types: tuple[str, ...] = ("white", "smooth", "face", "eye"),
        in_channels: int = 3,
        base_channels: int = 16,
        stage_blocks: tuple[int, ...] = (1, 1, 1, 1),
        input_size: int | None = None,
        gate_hidden: int = 0,
        residual_view: bool = False,
        residual_size: int | None = None,
        temperature: float = 1.0,
        gate_offsets: dict[str, float] | None = None,
        view_gate_offsets: dict[str, dict[str, float]] | None = None,
        view_calibration: dict[str, dict[str, list[float]]] | None = None,
    ) -> None:
        super().__init__()
        self.backbone = ResNetEncoder(in_channels, base_channels, tuple(stage_blocks), input_size)
        self.residual = ResidualEncoder(in_channels, base_channels, tuple(stage_blocks)) if residual_view else None
        self.gates = nn.ModuleDict()
        for name in types:
            self.gates[name] = GateHead(in_features=self.feature_dim, hidden_features=gate_hidden)

    @property
    def types(self) -> list[str]:
        """Gate names in output order."""
        return list(self.gates.keys())

    @property
    def feature_dim(self) -> int:
        return self.backbone.out_features + (self.residual.out_features if self.residual is not None else 0)

    @property
    def face_size(self) -> int | None:
        """The face size the router wants (the residual view reads detail at that size), or ``None``."""
        return self.config.residual_size if self.residual is not None else None

    def backbone_fingerprint(self) -> str:
        """Short sha256 of the backbone's weights (at bfloat16 precision): which features a gate reads."""
        digest = hashlib.sha256()
        views = self.backbone.state_dict()
        if self.residual is not None:
            views.update({f"residual.{k}": v for k, v in self.residual.state_dict().items()})
        for name, tensor in sorted(views.items()):
            digest.update(name.encode())
            # rounded to bfloat16, so a router cast to bfloat16 keeps the fingerprint of its float32 weights
            digest.update(tensor.detach().cpu().to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes())
        return digest.hexdigest()[:16]

    def new_gate(self) -> GateHead:
        """A fresh gate head for this backbone, fingerprinted with it (train it with :meth:`features`)."""
        return GateHead(in_features=self.feature_dim, hidden_features=self.config.gate_hidden,
                        backbone=self.backbone_fingerprint())

    def add_gate(self, name: str, head: GateHead) -> None:
        """Attach a (separately trained) gate head for a new type; other heads are untouched."""
        if name in self.gates:
            raise ValueError(f"router already has a gate {name!r}")
        if "." in name or not name:
            raise ValueError(f"invalid gate name {name!r}")
        if (
            head.config.in_features != self.feature_dim
            or head.config.hidden_features != self.config.gate_hidden
        ):
            raise ValueError(
                f"gate {name!r} ({dict(head.config)}) does not fit this router "
                f"(in_features={self.feature_dim}, gate_hidden={self.config.gate_hidden})"
            )
        trained_on, ours = head.config.get("backbone"), self.backbone_fingerprint()
        if trained_on is not None and trained_on != ours:
            warnings.warn(f"gate {name!r} was trained on another router backbone (fingerprint {trained_on}, this "
                          f"router's {ours}): its decisions are unreliable. Retrain it on this router: "
                          f"mofrr-train --stage gate --expert {name}", stacklevel=2)
        self.gates[name] = head.to(next(self.parameters()).device)
        self.register_to_config(types=tuple(self.gates.keys()))

    def get_gate(self, name: str) -> GateHead:
        return self.gates[name]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features ``[B, feature_dim]`` (freeze the backbone to train a new gate)."""
        if self.residual is None:
            return self.backbone(x)
        return torch.cat([self.backbone(x), self.residual(x)], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, 3, H, W]`` -> logits ``[B, len(types)]``."""
        feats = self.features(x)
        if not self.gates:  # no expert installed yet: nothing to route
            return feats.new_zeros(feats.shape[0], 0)
        logits = torch.stack([gate(feats) for gate in self.gates.values()], dim=-1) / self.config.temperature
        return logits + self.logit_offsets().to(logits) if self.config.gate_offsets else logits

    def logit_offsets(self, view: str | None = None) -> torch.Tensor:
        """``[len(types)]``: the offset of every gate's logit (0 for gates without one), for faces read in
        ``view`` (its ``view_gate_offsets`` where it has them; ``None``: ``gate_offsets``)."""
        offsets = dict(self.config.gate_offsets or {})
        offsets.update((self.config.view_gate_offsets or {}).get(view, {}) if view is not None else {})
        return torch.tensor([float(offsets.get(name, 0.0)) for name in self.gates])

    def logit_calibration(self, view: str | None = None) -> torch.Tensor:
        """``[2, len(types)]``: the scale and bias of every gate's printed logit for faces read in ``view`` (its
        ``view_calibration``; scale 1 and bias 0 for the gates and views without one)."""
        fitted = (self.config.view_calibration or {}).get(view, {}) if view is not None else {}
        return torch.tensor([[float(v) for v in fitted.get(name, (1.0, 0.0))] for name in self.gates],
                            dtype=torch.float64).reshape(-1, 2).T

    def compute_loss(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Multi-label BCE (L_class of the router) against ``labels [B, N]`` float."""
        logits = self(x)
        loss = multilabel_loss(logits, labels)
        accuracy = ((logits > 0) == (labels > 0.5)).float().mean()
        return loss, {"loss_class": loss.item(), "accuracy": accuracy.item()}
