"""``mofrr-train calibrate ROUTER_DIR``: temperature scaling of a trained router on held-out validation pairs.

The forensic report prints the router's probabilities, so they should mean what they say. One temperature
``T`` (``sigmoid(logit / T)``) fitted by maximum likelihood keeps every decision at the 0.5 threshold and
fixes over- or under-confidence. It is fitted on the validation split, retouched with the held-out
implementations (never on test faces), and written into the router's ``config.json``; the weights file, and
so its sha256 in registry.yaml, does not change.

``--max-false-calls RATE`` then makes a gate that flags more than ``RATE`` of the untouched validation faces
stricter: its logit gets an offset (``gate_offsets`` in config.json) so that exactly that share stays above
0.5. No gate is made more sensitive. The offset moves only the gate's decision: the report prints the
temperature-scaled probability and, per gate, the threshold it is compared with (``Pipeline.gate_thresholds``),
so the ECE printed here is that of the probabilities without the offsets. A forensic tool that calls
retouching on untouched faces does harm; this trades some detection of that type (its ROC AUC does not
change) for fewer false calls.
``--false-calls-on without-type`` counts, per gate, every face that lacks its type (untouched ones and those
retouched with other types only) instead of the untouched faces alone: in whole photos a smoothed face trips the
face and eye gates more often than an untouched one, and an expert that runs on a face without its type adds
error where nothing was to undo.
``--group-by race gender`` holds that budget in every group of the faces' FairFace metadata too (each race and
each gender), so no group pays for the others' low rate: the offset is the strictest any group needs.
``--max-any-calls RATE`` bounds what a user sees: the share of untouched faces on which *any* gate fires (an
untouched face some expert would change). Per-gate budgets add up across gates; this one spends a single budget
where it buys most detection: while too many untouched faces are flagged, the gate that gives up the least
recall per untouched face it stops flagging becomes stricter (:func:`any_call_offsets`). It applies after
``--max-false-calls``, and only makes gates stricter.
``--realign photo`` (or ``photo-upright``) fits on faces a share of which went through a whole-photo
alignment (:mod:`mofrr_core.data.realign`), as ``mofrr restore`` sees them.
``--view VIEW`` fits the offsets of the faces whole-photo mode's router reads in one view
(:data:`mofrr_core.router_view.ROUTER_VIEWS`) apart; ``--view native-grid`` with ``--realign photo-native-grid
--reframe portrait-jpeg``: smaller faces of photos reframed and saved as JPEG before the retouching, read from their
own pixels for their grid. ``--recalibrate TYPE...`` with ``--view`` also rescales what the report prints for those
gates in that view: a gate that reads other evidence in one view (native-grid: the break of a smaller face's JPEG
pattern) has its logits there shifted, not only stretched, which the one temperature cannot undo, so its printed
probability in that view is ``sigmoid(scale * logit + bias)``, fitted on the same faces (Platt scaling;
``view_calibration``). Decisions stay as they are: the printed threshold moves with the probabilities.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mofrr_core.eval.detection import expected_calibration_error, fit_platt, fit_temperature


@torch.no_grad()
def router_logits(router: torch.nn.Module, dataset: Any, batch_size: int = 32
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw logits (the router's own offsets and temperature undone), labels and face keys of every sample of
    ``dataset``."""
    logits, labels, keys = [], [], []
    offsets = router.logit_offsets()  # zeros for a router without gate offsets
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        raw = (router(torch.stack([s["retouched"] for s in items])) - offsets) * router.config.temperature
        logits.append(raw.numpy())
        labels.append(torch.stack([s["labels"] for s in items]).numpy() > 0.5)
        keys += [str(s.get("key")) for s in items]
    return np.concatenate(logits), np.concatenate(labels), keys


def needed_offset(scores: np.ndarray, rate: float) -> float:
    """The smallest ``d >= 0`` with at most ``floor(rate * len(scores))`` of ``scores - d`` above 0."""
    allowed = int(np.floor(rate * len(scores)))
    ranked = np.sort(scores)[::-1]
    if allowed >= len(ranked) or ranked[allowed] <= 0:
        return 0.0
    return float(np.nextafter(np.float32(ranked[allowed]), np.float32(np.inf)))  # the next one sets it


FALSE_CALLS_ON = ("untouched", "without-type")  # the faces a gate's false-call budget counts


def check_false_calls_on(on: str) -> None:
    if on not in FALSE_CALLS_ON:
        raise ValueError(f"--false-calls-on must be one of {', '.join(FALSE_CALLS_ON)}, got {on!r}")


def negative_rows(labels: np.ndarray, k: int, on: str = "untouched") -> np.ndarray:
    """Bool rows a call of gate ``k`` is false on: the untouched faces, or (``without-type``) every face
    without type ``k``."""
    check_false_calls_on(on)
    return ~labels.any(axis=1) if on == "untouched" else ~labels[:, k]


def false_call_offsets(logits: np.ndarray, labels: np.ndarray, types: list[str], rate: float,
                       groups: Sequence[np.ndarray] = (), on: str = "untouched") -> dict[str, float]:
    """``{type: offset < 0}`` for the gates whose calibrated ``logits`` put more than ``rate`` of the rows
    they must not flag (:func:`negative_rows`: untouched, or every face without the type) above 0; with the
    offset exactly ``floor(rate * n)`` of them stay above. ``groups``: per grouping (e.g. race, gender) one
    label per row; the budget then holds in every group too."""
    untouched = ~labels.any(axis=1)
    if not 0.0 <= rate < 1.0 or not untouched.any():
        raise ValueError(f"--max-false-calls needs a rate in [0, 1) and untouched faces, got {rate} and "
                         f"{int(untouched.sum())} untouched")
    offsets = {}
    for k, name in enumerate(types):
        negatives = negative_rows(labels, k, on)
        subsets = [negatives, *group_rows(negatives, groups)]
        offset = max(needed_offset(logits[rows, k], rate) for rows in subsets)
        if offset > 0:
            offsets[name] = -offset
    return offsets


def any_call_offsets(logits: np.ndarray, labels: np.ndarray, types: list[str], rate: float) -> dict[str, float]:
    """``{type: offset < 0}`` such that at most ``floor(rate * n)`` of the ``n`` untouched rows have any logit
    above 0. Greedy: while too many are flagged, the gate that gives up the least recall of its own type per
    untouched face it stops flagging becomes stricter (to just past one of its untouched scores)."""
    untouched = ~labels.any(axis=1)
    if not 0.0 <= rate < 1.0 or not untouched.any():
        raise ValueError(f"--max-any-calls needs a rate in [0, 1) and untouched faces, got {rate} and "
                         f"{int(untouched.sum())} untouched")
    allowed, negatives = int(np.floor(rate * untouched.sum())), logits[untouched]
    cuts, recall = [], []  # per gate: the cuts worth trying (none, or just past an untouched score) and recall
    for k in range(len(types)):
        scores = np.sort(negatives[negatives[:, k] > 0, k]).astype(np.float32)
        cuts.append(np.concatenate([[0.0], np.nextafter(scores, np.float32(np.inf))]))
        positives = logits[labels[:, k], k]
        recall.append(np.array([(positives > c).mean() if positives.size else 0.0 for c in cuts[-1]]))
    chosen = [0] * len(types)

    def calls(choice: list[int]) -> int:
        return int((negatives > np.array([cuts[k][j] for k, j in enumerate(choice)])).any(axis=1).sum())

    while (now := calls(chosen)) > allowed:
        moves = []  # (recall lost, untouched calls removed, gate, cut index): one gate made stricter
        for k, j in enumerate(chosen):
            for later in range(j + 1, len(cuts[k])):
                removed = now - calls(chosen[:k] + [later] + chosen[k + 1:])
                moves.append((recall[k][j] - recall[k][later], removed, k, later))
        if not moves:
            break  # every gate is already past every untouched score
        enough = [m for m in moves if now - m[1] <= allowed]
        useful = [m for m in moves if m[1] > 0]
        if enough:  # the last step: the cheapest move that meets the budget
            _, _, k, later = min(enough, key=lambda m: (m[0], -m[1]))
        elif useful:  # the least recall given up per untouched face no longer flagged
            _, _, k, later = min(useful, key=lambda m: (m[0] / m[1], -m[1]))
        else:  # these faces are flagged by several gates: make the cheapest one a step stricter
            _, _, k, later = min((m for m in moves if m[3] == chosen[m[2]] + 1), key=lambda m: m[0])
        chosen[k] = later
    return {name: -float(cuts[k][j]) for k, (name, j) in enumerate(zip(types, chosen)) if j > 0}


def offset_row(offsets: dict[str, float], types: list[str]) -> np.ndarray:
    """``offsets`` as a row over ``types`` (0 for a gate without one), to add to ``[N, len(types)]`` logits."""
    return np.array([offsets.get(t, 0.0) for t in types])


def group_rows(rows: np.ndarray, groups: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The non-empty parts of the bool mask ``rows``, one per group of every grouping in ``groups``."""
    return [rows & (group == value) for group in groups for value in np.unique(group[rows])]


def face_groups(data_root: str | Path | None, keys: Sequence[str], group_by: Sequence[str]) -> list[np.ndarray]:
    """Per metadata field of ``group_by`` (``race``, ``gender``...), the group of every face of ``keys``."""
    from mofrr_core.data.shards import face_metadata

    meta = face_metadata(data_root)
    missing = [by for by in group_by if not any(by in meta.get(key, {}) for key in keys)]
    if missing:
        raise ValueError(f"--group-by: the faces have no {', '.join(missing)} metadata")
    return [np.array([str(meta.get(key, {}).get(by, "unknown")) for key in keys]) for by in group_by]


def group_false_calls(calibrated: np.ndarray, untouched: np.ndarray, types: list[str],
                      groups: Sequence[np.ndarray]) -> dict[str, float]:
    """``{type: highest false-call rate over the groups}`` on the untouched rows."""
    subsets = group_rows(untouched, groups)
    return {name: max(float((calibrated[rows, k] > 0).mean()) for rows in subsets) for k, name in enumerate(types)}


def calibrate_router(router_dir: str | Path, data_root: str | Path | None, n: int = 512, seed: int = 4321,
                     apis_set: str = "heldout", write: bool = True, max_false_calls: float | None = None,
                     realign: str | None = None, group_by: Sequence[str] = (),
                     false_calls_on: str = "untouched", max_any_calls: float | None = None,
                     postprocess: str | None = None) -> dict[str, Any]:
    """Fit the temperature (and with ``max_false_calls`` the gate offsets, in every ``group_by`` group, counted
    on the ``false_calls_on`` faces; then with ``max_any_calls`` the offsets that keep the untouched faces with
    any call within that share) of the router saved in ``router_dir``, on faces ``realign``-ed and
    ``postprocess``-ed (presets of the data engine) as given; write them to its config.json if ``write``."""
    from mofrr_core.data.cache import CachedPairs
    from mofrr_core.train.stages import load_network

    if (group_by or false_calls_on != "untouched") and max_false_calls is None:
        raise ValueError("--group-by and --false-calls-on go with --max-false-calls")
    check_false_calls_on(false_calls_on)  # before any work
    folder = Path(router_dir)
    router = load_network(folder, "Router").eval()
    pairs = calibration_pairs(router, data_root, n, seed, realign, postprocess, apis_set)
    logits, labels, keys = router_logits(router, CachedPairs(pairs, n, mirror=False,
                                                             desc="retouching calibration pairs"))
    groups = face_groups(data_root, keys, group_by) if group_by else []
    temperature = round(float(fit_temperature(logits, labels)), 4)
    offsets = {} if max_false_calls is None else false_call_offsets(logits / temperature, labels, router.types,
                                                                     max_false_calls, groups, false_calls_on)
    if max_any_calls is not None:  # on top of the per-gate offsets; both only ever make a gate stricter
        stricter = any_call_offsets(logits / temperature + offset_row(offsets, router.types), labels, router.types,
                                    max_any_calls)
        offsets = {t: offsets.get(t, 0.0) + stricter.get(t, 0.0) for t in router.types if t in offsets | stricter}
    calibrated = logits / temperature + offset_row(offsets, router.types)
    before, after = printed_ece(logits, labels), printed_ece(logits / temperature, labels)  # after: what reports print
    untouched = ~labels.any(axis=1)
    # a view's offsets are fitted on top of the offsets replaced here, its rescaling on this temperature's logits
    cleared = any(getattr(router.config, key, None) for key in ("view_gate_offsets", "view_calibration"))
    if write:
        update_config(folder, temperature=temperature, view_gate_offsets=None, view_calibration=None,
                      gate_offsets={t: round(v, 4) for t, v in offsets.items()} or None)
    fit = {"temperature": temperature, "gate_offsets": offsets, "ece_before": before, "ece_after": after,
           "view_offsets_cleared": cleared,
           "n": float(len(labels)), "untouched": float(untouched.sum()),
           "false_calls": {t: float((calibrated[untouched, k] > 0).mean()) for k, t in enumerate(router.types)},
           "any_calls": float((calibrated[untouched] > 0).any(axis=1).mean()),
           "false_calls_without_type": {t: float((calibrated[negative_rows(labels, k, "without-type"), k] > 0).mean())
                                        for k, t in enumerate(router.types)}}
    if groups:
        fit["worst_group_false_calls"] = group_false_calls(calibrated, untouched, router.types, groups)
    return fit


def printed_ece(logits: np.ndarray, labels: np.ndarray) -> float:
    """The expected calibration error of the probabilities ``sigmoid(logits)`` against ``labels``."""
    return expected_calibration_error(1 / (1 + np.exp(-logits)), labels)


def update_config(folder: Path, **changes: Any) -> None:
    """Write ``changes`` into the router folder's config.json (the weights file, and so its sha256, stay)."""
    path = folder / "config.json"
    config = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def calibration_pairs(router: Any, data_root: str | Path | None, n: int, seed: int, realign: str | None,
                      postprocess: str | None, apis_set: str = "heldout", reframe: str | None = None) -> Any:
    """The ``n`` validation pairs a calibration fits on: held-out implementations, a quarter untouched, at the
    router's face size, framed as ``reframe``, cut as ``realign`` and post-processed as ``postprocess`` say."""
    from mofrr_core.data import RetouchPairs

    return RetouchPairs(data_root, split="val", resolution=router.face_size or router.config.input_size or 128,
                        num_ops=(0, 4), types=router.types, seed=seed, length=n, p_clean=0.25, p_single=0.6,
                        apis_set=apis_set, realign=realign, postprocess=postprocess, reframe=reframe)


class ViewedPairs:
    """The samples of a :class:`~mofrr_core.data.RetouchPairs`, remembering in which view whole-photo mode's router
    would read each face (``views[i]``: ``resized`` where the realignment resampled the face, else the native cut's
    view: ``native`` or ``native-grid``)."""

    def __init__(self, pairs: Any) -> None:
        self.pairs, self.views = pairs, {}

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.pairs.generate(index)
        cut = item.extra.get("realign") or {}  # a face left as it came is its photo's own pixels
        self.views[index] = "resized" if cut.get("applied") and not cut.get("native") else cut.get("view", "native")
        return item.to_sample()


def calibrate_view(router_dir: str | Path, data_root: str | Path | None, view: str, n: int = 2048,
                   seed: int = 4321, write: bool = True, max_false_calls: float | None = None,
                   max_any_calls: float | None = None, realign: str | None = "photo-native",
                   postprocess: str | None = None, gates: Sequence[str] | None = None,
                   reframe: str | None = None, false_calls_on: str = "untouched", recalibrate: Sequence[str] = ()
                   ) -> dict[str, Any]:
    """Gate offsets for the faces whole-photo mode's router reads in ``view`` (``native``, ``resized`` or
    ``native-grid``): on those of ``n`` validation pairs framed as ``reframe`` and cut as ``realign`` does (a preset
    with ``crop: native``), the router's own temperature and offsets, made stricter where ``max_false_calls`` (on
    the ``false_calls_on`` faces) / ``max_any_calls`` need it (never looser; with ``gates``, only those gates, the
    budgets counted on their calls), written to its config.json as
    ``view_gate_offsets[view]`` if ``write`` (replacing that view's earlier offsets); ``temperature`` and
    ``gate_offsets`` stay as they are. With ``recalibrate`` (gates), also the Platt scale and bias of their printed
    probabilities in that view (:func:`view_calibration`), written as ``view_calibration[view]`` (else that view's
    earlier one is removed)."""
    from mofrr_core.data.realign import crops_natively
    from mofrr_core.router_view import ROUTER_VIEWS
    from mofrr_core.train.stages import load_network

    if view not in ROUTER_VIEWS:
        raise ValueError(f"--view: expected {' or '.join(ROUTER_VIEWS)}, got {view!r}")
    check_false_calls_on(false_calls_on)
    if not crops_natively(realign):
        raise ValueError(f"--view needs a --realign preset that reads faces natively (photo-native), got {realign!r}")
    folder = Path(router_dir)
    router = load_network(folder, "Router").eval()
    for option, named in (("--gates", gates), ("--recalibrate", recalibrate)):
        unknown = sorted(set(named or ()) - set(router.types))
        if unknown:
            raise ValueError(f"{option}: the router has no gate {', '.join(unknown)} "
                             f"(it has {', '.join(router.types)})")
    pairs = ViewedPairs(calibration_pairs(router, data_root, n, seed, realign, postprocess, reframe=reframe))
    logits, labels, _ = router_logits(router, pairs)
    rows = np.array([pairs.views[i] == view for i in range(len(labels))])
    if not rows.any():
        raise ValueError(f"--view {view}: none of the {len(labels)} pairs is read in that view (realign {realign!r}, "
                         f"reframe {reframe!r})")
    printed, labels = logits[rows] / router.config.temperature, labels[rows]  # the view's faces, as reports print
    base = dict(router.config.gate_offsets or {})
    calibrated = printed + offset_row(base, router.types)
    types = [t for t in router.types if not gates or t in gates]  # the gates these budgets move
    stricter = {} if max_false_calls is None else false_call_offsets(calibrated, labels, router.types,
                                                                     max_false_calls, on=false_calls_on)
    stricter = {t: v for t, v in stricter.items() if t in types}
    if max_any_calls is not None:  # the other gates' calls neither count nor move
        counted = np.where([t in types for t in router.types], calibrated + offset_row(stricter, router.types), -np.inf)
        more = any_call_offsets(counted, labels, router.types, max_any_calls)
        stricter = {t: stricter.get(t, 0.0) + more.get(t, 0.0) for t in types if t in stricter | more}
    offsets = {t: base.get(t, 0.0) + stricter[t] for t in stricter}
    judged = calibrated + offset_row(stricter, router.types)
    untouched = ~labels.any(axis=1)
    fitted = view_calibration(printed, labels, router.types, recalibrate) if recalibrate else {}
    if write:
        update_config(folder, view_gate_offsets=replace_view(router.config.view_gate_offsets, view,
                                                             {t: round(v, 4) for t, v in offsets.items()}),
                      view_calibration=replace_view(router.config.view_calibration, view, fitted))
    return {"view": view, "gate_offsets": offsets, "n": float(rows.sum()), "untouched": float(untouched.sum()),
            "gates": types, "calibration": fitted,
            "ece": {t: (printed_ece(printed[:, k], labels[:, k]),
                        printed_ece(printed[:, k] * fitted[t][0] + fitted[t][1], labels[:, k]))
                    for k, t in enumerate(router.types) if t in fitted},
            "false_calls": {t: float((judged[untouched, k] > 0).mean()) for k, t in enumerate(router.types)},
            "any_calls": float((judged[untouched] > 0).any(axis=1).mean()),
            "false_calls_before": {t: float((calibrated[untouched, k] > 0).mean()) for k, t in enumerate(router.types)}}


def view_calibration(printed: np.ndarray, labels: np.ndarray, types: list[str], gates: Sequence[str]
                     ) -> dict[str, list[float]]:
    """``{type: [scale, bias]}``: the Platt scaling (:func:`~mofrr_core.eval.detection.fit_platt`) of the ``printed``
    logits ``[n, len(types)]`` of each of ``gates`` against its ``labels`` column."""
    return {t: [round(v, 4) for v in fit_platt(printed[:, k], labels[:, k])] for k, t in enumerate(types) if t in gates}


def replace_view(by_view: dict[str, Any] | None, view: str, entry: dict[str, Any]) -> dict[str, Any] | None:
    """``by_view`` (a router config's ``{view: ...}``) with ``view``'s entry replaced by ``entry`` (removed if
    empty); ``None`` if nothing is left."""
    views = {k: v for k, v in (by_view or {}).items() if k != view}
    views.update({view: entry} if entry else {})
    return views or None


def describe_view_fit(fit: dict[str, Any]) -> str:
    """One line: the view's fitted offsets and its untouched faces' false calls before and after."""
    offsets = ", ".join(f"{t} {v:+.3f}" for t, v in fit["gate_offsets"].items()) or "none (the router's suffice)"
    calls = ", ".join(f"{t} {fit['false_calls_before'][t]:.1%} -> {v:.1%}" for t, v in fit["false_calls"].items())
    ece = ", ".join(f"{t} scale {fit['calibration'][t][0]:.3f} bias {fit['calibration'][t][1]:+.3f} (ECE "
                    f"{before:.3f} -> {after:.3f})" for t, (before, after) in fit.get("ece", {}).items())
    return (f"view {fit['view']} ({int(fit['n'])} validation pairs, {int(fit['untouched'])} untouched): gate offsets "
            f"{offsets}; false calls {calls} (any call {fit['any_calls']:.1%})"
            + (f"; printed probabilities: {ece}" if ece else ""))


def describe_fit(fit: dict[str, Any]) -> str:
    """One line: the fitted temperature, ECE before and after, the gate offsets and the false calls."""
    offsets = ", ".join(f"{t} {v:+.3f}" for t, v in fit["gate_offsets"].items()) or "none"
    calls = ", ".join(f"{t} {v:.1%}" for t, v in fit["false_calls"].items())
    others = ", ".join(f"{t} {v:.1%}" for t, v in fit.get("false_calls_without_type", {}).items())
    worst = ", ".join(f"{t} {v:.1%}" for t, v in fit.get("worst_group_false_calls", {}).items())
    return (f"temperature {fit['temperature']:.3f} on {int(fit['n'])} held-out validation pairs: ECE "
            f"{fit['ece_before']:.3f} -> {fit['ece_after']:.3f}; gate offsets: {offsets}; false calls on "
            f"{int(fit['untouched'])} untouched: {calls} (any call {fit['any_calls']:.1%})"
            + (f"; on faces without the type: {others}" if others else "")
            + (f"; in the worst group: {worst}" if worst else "")
            + ("; the view offsets and rescalings fitted on top of the old ones are cleared: refit them (--view)"
               if fit.get("view_offsets_cleared") else ""))
