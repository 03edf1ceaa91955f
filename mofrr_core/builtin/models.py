"""Built-in plugin: the network classes of :mod:`mofrr_core.models`, by ``type:`` name."""

from mofrr_core.hookspecs import hookimpl


@hookimpl
def register_models(register):
    from mofrr_core.models import MODEL_TYPES

    for name, cls in MODEL_TYPES.items():
        register(cls, name=name)
