"""The hooks a MoFRR plugin may implement (pluggy project name ``mofrr``)."""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("mofrr")
hookimpl = HookimplMarker("mofrr")


@hookspec
def register_experts(register):
    """Register restoration experts: ``register(ExpertSpec(...))``."""


@hookspec
def register_retouch_ops(register):
    """Register retouching operations for the data engine: ``register(RetouchOpSpec(...))``."""


@hookspec
def register_landmark_providers(register):
    """Register face landmark detectors: ``register(LandmarkProviderSpec(...))``."""


@hookspec
def register_models(register):
    """Register network classes by ``type:`` name: ``register(cls, name=None)``."""


@hookspec
def register_datasets(register):
    """Register training data sources by ``data.type:`` name: ``register(build, name=...)``, where
    ``build(config, split, *, types, ops, num_ops, p_clean, length, seed, cache) -> Dataset``."""
