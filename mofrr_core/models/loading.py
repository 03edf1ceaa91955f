"""Loading a ``save_pretrained`` folder so that the network computes exactly what the saved one did."""

from __future__ import annotations

import copy
import itertools

import torch
from diffusers import ModelMixin


def own_memory(model: torch.nn.Module) -> torch.nn.Module:
    """Give every parameter and buffer of ``model`` its own freshly allocated storage (in place).

    safetensors hands the weights back packed in one buffer, some of them only 4-byte aligned. On the
    CPU the vectorised convolution kernels then take another code path and round differently (about
    1e-7), so a reloaded network would not reproduce the saved one bit for bit.
    """
    with torch.no_grad():
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            tensor.data = tensor.data.clone()
    return model


class MoFRRModel(ModelMixin):
    """diffusers' ``ModelMixin`` whose ``from_pretrained`` gives the weights memory of their own.

    Every MoFRR network derives from it, so a network saved with ``save_pretrained`` and loaded back
    computes bit for bit what it computed before (tested).
    """

    @classmethod
    def from_pretrained(cls, *args, **kwargs):  # diffusers' signature and docstring
        return own_memory(super().from_pretrained(*args, **kwargs))

    def with_config(self, **changes: object) -> MoFRRModel:
        """A copy of this network (same weights, own memory) with ``changes`` to config keys that change no
        weight, e.g. the ablation switches ``expert.with_config(use_idem=False)``."""
        unknown = sorted(set(changes) - set(self.config))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no config key {', '.join(unknown)}")
        clone = copy.deepcopy(self)
        clone.register_to_config(**changes)
        return clone
