"""What the ``mofrr serve`` page shows, as plain data and matplotlib figures (no gradio, no pyplot)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from mofrr_core.restore import describe

PROBABILITY_COLUMNS = ["face", "type", "probability", "found", "degree"]
BAR_COLOURS = {True: "#c2410c", False: "#9ca3af"}  # above the threshold / below it


def face_label(face: dict[str, Any]) -> str:
    """``face 1: face 0.71, eye 0.55`` (the types found: above their gate's threshold), or ``face 1: no
    retouching``."""
    found = [f"{t} {face['probabilities'][t]:.2f}" for t in face["detected"]]
    return f"face {face['index'] + 1}: {', '.join(found) or 'no retouching'}"


def face_boxes(faces: list[dict[str, Any]]) -> list[tuple[tuple[int, int, int, int], str]]:
    """``[((x0, y0, x1, y1), label)]`` per face, for boxes drawn on the photo."""
    return [(tuple(int(v) for v in face["box"]), face_label(face)) for face in faces]


def probability_rows(faces: list[dict[str, Any]]) -> list[list[Any]]:
    """One row per face and type: face number, type, router probability, found (above the gate's threshold;
    "yes, not restored" where a confounding retouching explained the call away), degree."""
    rows = []
    for face in faces:
        for retouch_type, probability in face["probabilities"].items():
            degree = face["degrees"].get(retouch_type)
            found = "no" if retouch_type not in face["detected"] else (
                "yes, not restored" if retouch_type in face.get("explained_away", []) else "yes")
            rows.append([face["index"] + 1, retouch_type, round(float(probability), 4), found,
                         "" if degree is None else round(float(degree), 2)])
    return rows


def probability_figure(faces: list[dict[str, Any]], thresholds: dict[str, float]) -> Figure:
    """Per face, the router's probability per type as horizontal bars, each gate's threshold as a black tick
    across its bar (``thresholds``: the report's ``gate_thresholds``, or the face's own where it has them)."""
    heights = [0.9 + 0.32 * max(1, len(face["probabilities"])) for face in faces] or [1.0]
    figure = Figure(figsize=(5.2, sum(heights)), dpi=100, layout="constrained")
    axes = figure.subplots(len(faces) or 1, 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, face in zip(axes, faces):
        types = list(face["probabilities"])
        values = [float(face["probabilities"][t]) for t in types]
        ax.barh(types, values, color=[BAR_COLOURS[t in face["detected"]] for t in types])
        ticks = face.get("gate_thresholds", thresholds)
        ax.vlines([ticks.get(t, 0.5) for t in types], [y - 0.45 for y in range(len(types))],
                  [y + 0.45 for y in range(len(types))], color="#111827", linewidth=1.5)
        for y, value in enumerate(values):
            ax.text(min(value, 0.86) + 0.01, y, f"{value:.2f}", va="center", fontsize=8)
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_title(f"face {face['index'] + 1}: router probability (tick: the gate's threshold)", fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in axes[len(faces):]:
        ax.set_axis_off()
    return figure


def summary_markdown(name: str, mode: str, faces: list[dict[str, Any]],
                     difference: dict[str, float] | None = None) -> str:
    """What was found in ``name``: one line per face (the line ``mofrr restore`` prints), then the difference."""
    lines = [f"**{name}** ({mode}): {len(faces)} face(s)", ""]
    lines += [f"- face {face['index'] + 1}: {describe([face])}; degrees: "
              + (", ".join(f"{t} {d:.1f}" for t, d in face["degrees"].items()) or "none") for face in faces]
    if difference:
        lines += ["", f"Changed pixels: {difference['changed_fraction']:.1%}, mean |restored - input| "
                      f"{difference['mean_abs']:.2f} levels, largest {difference['max_abs']}."]
    return "\n".join(lines)
