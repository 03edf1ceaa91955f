"""Built-in plugin: the training data sources, by ``data.type:`` name (``RetouchPairs``, ``SyntheticPairs``)."""

from mofrr_core.hookspecs import hookimpl


@hookimpl
def register_datasets(register):
    from mofrr_core.train.datasets import build_retouch_pairs, build_synthetic_pairs

    register(build_retouch_pairs, name="RetouchPairs")
    register(build_synthetic_pairs, name="SyntheticPairs")
