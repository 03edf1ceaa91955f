"""Exponential moving average of a model's weights (checkpointable with ``accelerator.save_state``)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """EMA of every floating-point parameter and buffer of ``model``.

    ``decay_t = min(decay, (1 + t) / (10 + t))`` when ``warmup`` (as diffusers' ``EMAModel``), so a
    short run is not stuck at the initial weights. ``state_dict``/``load_state_dict`` make it a
    valid ``accelerator.register_for_checkpointing`` object.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        self.decay = float(decay)
        self.warmup = warmup
        self.num_updates = 0
        self.shadow = {name: value.detach().clone() for name, value in model.state_dict().items()}

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step towards ``model``'s current weights (integer buffers are copied)."""
        decay = self.current_decay()
        for name, value in model.state_dict().items():
            shadow = self.shadow[name]
            if value.is_floating_point():
                shadow.lerp_(value.detach().to(shadow.dtype), 1 - decay)
            else:
                shadow.copy_(value)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> nn.Module:
        """Load the averaged weights into ``model`` (in place) and return it."""
        model.load_state_dict(self.shadow)
        return model

    def averaged_model(self, model: nn.Module) -> nn.Module:
        """A deep copy of ``model`` holding the averaged weights."""
        return self.copy_to(copy.deepcopy(model))

    def state_dict(self) -> dict:
        return {"decay": self.decay, "warmup": self.warmup, "num_updates": self.num_updates,
                "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.warmup = bool(state["warmup"])
        self.num_updates = int(state["num_updates"])
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)


class GeneratorState:
    """A ``torch.Generator`` wrapped so ``accelerator.save_state`` saves and restores its state."""

    def __init__(self, seed: int, device: str | torch.device = "cpu") -> None:
        self.generator = torch.Generator(device).manual_seed(seed)

    def state_dict(self) -> dict:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["state"])
