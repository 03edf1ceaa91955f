"""What the `mofrr serve` page shows, from a restoration's face records (no gradio)."""

from __future__ import annotations

import io

from matplotlib.colors import to_hex

from mofrr_core.web.views import (
    BAR_COLOURS,
    face_boxes,
    probability_figure,
    probability_rows,
    summary_markdown,
)

FACES = [
    {"index": 0, "box": [1, 2, 30, 40], "probabilities": {"white": 0.8, "smooth": 0.1, "eye": 0.5},
     "detected": ["white"], "degrees": {"white": 3.24}, "experts_run": ["white", "shared"]},
    {"index": 1, "box": [50, 5, 90, 60], "probabilities": {"white": 0.2, "smooth": 0.6, "eye": 0.05},
     "detected": ["smooth"], "degrees": {"smooth": 1.5}, "experts_run": ["smooth", "shared"]},
]


def test_rows_and_boxes_follow_the_detected_types():
    assert probability_rows(FACES) == [
        [1, "white", 0.8, "yes", 3.24], [1, "smooth", 0.1, "no", ""], [1, "eye", 0.5, "no", ""],
        [2, "white", 0.2, "no", ""], [2, "smooth", 0.6, "yes", 1.5], [2, "eye", 0.05, "no", ""]]
    assert face_boxes(FACES) == [((1, 2, 30, 40), "face 1: white 0.80"), ((50, 5, 90, 60), "face 2: smooth 0.60")]
    explained = [{**FACES[0], "detected": ["white", "eye"], "explained_away": ["eye"]}]
    assert [row[3] for row in probability_rows(explained)] == ["yes", "no", "yes, not restored"]
    nothing = [{**face, "detected": []} for face in FACES]
    assert face_boxes(nothing) == [((1, 2, 30, 40), "face 1: no retouching"),
                                   ((50, 5, 90, 60), "face 2: no retouching")]


def test_probability_figure_has_a_bar_per_type_and_each_gates_threshold():
    thresholds = {"white": 0.5, "smooth": 0.7, "eye": 0.56}
    figure = probability_figure(FACES, thresholds)
    assert len(figure.axes) == 2
    for ax, face in zip(figure.axes, FACES):
        bars = ax.patches
        assert [round(bar.get_width(), 6) for bar in bars] == list(face["probabilities"].values())
        assert [to_hex(bar.get_facecolor()) for bar in bars] == [
            BAR_COLOURS[t in face["detected"]] for t in face["probabilities"]]
        (ticks,) = ax.collections
        ticks_at = [round(float(segment[0][0]), 6) for segment in ticks.get_segments()]
        assert ticks_at == [thresholds[t] for t in face["probabilities"]]
        assert ax.get_xlim() == (0.0, 1.0)
        assert [label.get_text() for label in ax.get_yticklabels()] == list(face["probabilities"])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")  # renders without pyplot
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_has_the_cli_line_per_face_and_the_difference():
    text = summary_markdown("group.jpg", "whole-photo", FACES,
                            {"changed_fraction": 0.1234, "mean_abs": 1.5, "max_abs": 40, "p99_abs": 9.0})
    assert text.startswith("**group.jpg** (whole-photo): 2 face(s)\n")
    assert "- face 1: found white (0.80); experts run: white, shared; degrees: white 3.2" in text
    assert "- face 2: found smooth (0.60); experts run: smooth, shared; degrees: smooth 1.5" in text
    assert "Changed pixels: 12.3%, mean |restored - input| 1.50 levels, largest 40." in text
    assert text.count("\n") == 5
