"""Held-out retouching implementations (``heldout.yaml``): never in training, the generalisation test.

``heldout_apis()`` reads the versioned list; ``training_apis()`` is every registered api minus it;
``apis_in_set(op, set)`` resolves ``"train"`` / ``"heldout"`` / ``"all"`` for the data engine, and
``check_heldout()`` verifies the protocol (held-out apis registered, their families unused by the
training apis of the same type). Ops absent from the file (plugins) have no held-out api.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

HELDOUT_FILE = Path(__file__).with_name("heldout.yaml")
API_SETS = ("train", "heldout", "all")


class HeldOutLeak(RuntimeError):
    """A held-out api was about to reach data used for training."""


@lru_cache(maxsize=1)
def _load() -> tuple[int, dict[str, tuple[str, ...]]]:
    data = yaml.safe_load(HELDOUT_FILE.read_text())
    if not isinstance(data, dict) or "version" not in data or not isinstance(data.get("heldout"), dict):
        raise ValueError(f"{HELDOUT_FILE}: expected 'version' and a 'heldout' mapping of op -> [api, ...]")
    return int(data["version"]), {str(op): tuple(map(str, apis)) for op, apis in data["heldout"].items()}


def heldout_version() -> int:
    """Version of the held-out list (recorded with every evaluation)."""
    return _load()[0]


def heldout_apis() -> dict[str, list[str]]:
    """``{op: [api, ...]}``: the implementations no training data may use."""
    return {op: list(apis) for op, apis in _load()[1].items()}


def training_apis() -> dict[str, list[str]]:
    """``{op: [api, ...]}``: every registered api that is not held out (sorted)."""
    from mofrr_core.plugins import get_retouch_ops

    held = _load()[1]
    return {op: sorted(set(apis) - set(held.get(op, ()))) for op, apis in get_retouch_ops().items()}


def is_heldout(op: str, api: str) -> bool:
    return api in _load()[1].get(op, ())


def apis_in_set(op: str, apis_set: str, registered: list[str] | None = None) -> list[str]:
    """The apis of ``op`` that ``apis_set`` (``train``, ``heldout`` or ``all``) allows (sorted)."""
    if apis_set not in API_SETS:
        raise ValueError(f"apis_set must be one of {', '.join(API_SETS)}, got {apis_set!r}")
    if registered is None:
        from mofrr_core.plugins import get_retouch_ops

        registered = list(get_retouch_ops().get(op, {}))
    held = set(_load()[1].get(op, ()))
    if apis_set == "train":
        return sorted(set(registered) - held)
    if apis_set == "heldout":
        return sorted(set(registered) & held)
    return sorted(registered)


def check_heldout() -> None:
    """Raise ``ValueError`` if a held-out api is not registered, or shares a family with a training api."""
    from mofrr_core.plugins import get_retouch_ops

    registered = get_retouch_ops()
    problems = []
    for op, held in _load()[1].items():
        specs = registered.get(op, {})
        missing = [api for api in held if api not in specs]
        if missing:
            problems.append(f"{op}: held-out api(s) {missing} not registered")
            continue
        train_families = {spec.family for api, spec in specs.items() if api not in held}
        for api in held:
            if not specs[api].family or specs[api].family in train_families:
                problems.append(f"{op}/{api}: family {specs[api].family!r} is also used by a training api")
    if problems:
        raise ValueError(f"{HELDOUT_FILE}: " + "; ".join(problems))
