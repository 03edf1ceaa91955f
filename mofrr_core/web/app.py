"""The ``mofrr serve`` page (Gradio Blocks): drop a photo, see what the router found, download the report.

Import this module only with gradio installed (``pip install 'mofrr[web]'``); :mod:`mofrr_core.web.serve`
imports it after checking.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import gradio as gr

from mofrr_core.restore import describe
from mofrr_core.web.jobs import Restorer, RestoreSettings, UploadError, WebResult
from mofrr_core.web.views import (
    PROBABILITY_COLUMNS,
    face_boxes,
    probability_figure,
    probability_rows,
    summary_markdown,
)

INTRO = """# MoFRR: restore the original face from a retouched photo
Drop a photo (or pick one). The router estimates, per face, how likely each retouching type is; the experts
of the types above the threshold undo it. Everything runs on this machine: nothing is uploaded anywhere.
A restoration is a lead to check, not forensic evidence."""


def offline_theme() -> gr.themes.Base:
    """Gradio's default look with the system's fonts: the default theme would load Google Fonts."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"],
                             font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"])


def _whole(value: Any) -> Any:
    """``3.0`` -> ``3`` (Gradio's number fields send floats); anything else as it is, checked later."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def settings_from_page(aligned: bool, steps: Any, seed: Any, experts: list[str] | None) -> RestoreSettings:
    """The page's controls as :class:`RestoreSettings` (whole numbers as ints; an empty seed is 0)."""
    return RestoreSettings(aligned=bool(aligned), steps=None if steps in (None, "") else _whole(steps),
                           seed=0 if seed in (None, "") else _whole(seed), experts=tuple(experts or ()))


def page_outputs(web: WebResult) -> tuple:
    """What each output component of the page shows for one restored upload (in :func:`build_app`'s order)."""
    faces = web.result.faces
    report = json.loads(web.report.json.read_text())
    return (
        summary_markdown(web.name, report["mode"], faces, report["difference"]),
        (web.image, face_boxes(faces)),
        probability_figure(faces, web.thresholds),
        probability_rows(faces),
        (web.image, web.result.image),
        str(web.report.heatmap),
        gr.update(value=str(web.restored_png), visible=True),
        gr.update(value=str(web.report_zip), visible=True),
    )


def build_app(restorer: Restorer, *, aligned: bool = False, steps: int = 10,
              experts: list[str] | None = None) -> gr.Blocks:
    """The page: upload and settings on the left, what the router found and the restoration on the right."""
    names = list(restorer.pipelines.names)
    with gr.Blocks(title="MoFRR", theme=offline_theme(), analytics_enabled=False,
                   delete_cache=(600, 3600)) as app:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                upload = gr.File(label="Photo (drop or click to pick)", type="filepath", elem_id="upload")
                aligned_box = gr.Checkbox(value=aligned, label="Aligned face crop (--aligned): skip face detection",
                                          elem_id="aligned")
                with gr.Accordion("Settings", open=True):
                    steps_box = gr.Slider(1, 50, value=steps, step=1, label="DDIM steps", elem_id="steps")
                    seed_box = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
                    experts_box = gr.CheckboxGroup(names, value=experts or names, label="Experts",
                                                   elem_id="experts")
                run = gr.Button("Restore", variant="primary", elem_id="restore")
                summary = gr.Markdown(elem_id="summary")
                download_png = gr.DownloadButton("Download restored PNG", visible=False, elem_id="download-png")
                download_report = gr.DownloadButton("Download forensic report (zip)", visible=False,
                                                    elem_id="download-report")
            with gr.Column(scale=2):
                with gr.Row():
                    boxes = gr.AnnotatedImage(label="Faces found", format="png", elem_id="faces")
                    chart = gr.Plot(label="Router probability per type", show_label=False, format="png",
                                    elem_id="chart")
                table = gr.Dataframe(headers=PROBABILITY_COLUMNS, label="Per face and type", interactive=False,
                                     elem_id="probabilities")
                with gr.Row():
                    slider = gr.ImageSlider(label="Before / after", type="numpy", format="png", elem_id="slider")
                    heatmap = gr.Image(label="|restored - input| (0..32 levels)", type="filepath", format="png",
                                       elem_id="heatmap")

        def restore(path: str | None, aligned: bool, steps: Any, seed: Any, experts: list[str] | None,
                    progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008 - gradio's progress idiom
            if not path:
                raise gr.Error("drop or pick a photo first", print_exception=False)
            try:
                web = restorer.restore(path, settings_from_page(aligned, steps, seed, experts),
                                       lambda fraction, text: progress(fraction, desc=text))
            except UploadError as error:
                print(f"error: {error}", file=sys.stderr, flush=True)
                raise gr.Error(str(error), duration=None, print_exception=False) from None
            print(f"{web.name}: {describe(web.result.faces)}", flush=True)
            return page_outputs(web)

        run.click(restore, inputs=[upload, aligned_box, steps_box, seed_box, experts_box],
                  outputs=[summary, boxes, chart, table, slider, heatmap, download_png, download_report],
                  concurrency_limit=1)
    return app
