"""The Gradio page of `mofrr serve`: offline theme, analytics off, what each output shows, errors as gr.Error."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio", reason="needs the web extra: pip install 'mofrr[web]'")

from mofrr_core.web.app import build_app, offline_theme, page_outputs, settings_from_page  # noqa: E402
from mofrr_core.web.jobs import RestoreSettings  # noqa: E402


@pytest.fixture
def face_upload(tmp_path, astronaut_face):
    (tmp_path / "upload").mkdir()
    Image.fromarray(astronaut_face).save(tmp_path / "upload" / "face.png")
    return tmp_path / "upload" / "face.png"


def restore_handler(app: gr.Blocks):
    (function,) = [block_fn.fn for block_fn in app.fns.values() if block_fn.name == "restore"]
    return function


def test_theme_uses_no_web_fonts():
    assert gr.themes.Default()._stylesheets  # Gradio's default theme would load Google Fonts ...
    assert offline_theme()._stylesheets == []  # ... this one loads nothing
    assert "@font-face" in gr.themes.Default()._get_theme_css()
    assert "@font-face" not in offline_theme()._get_theme_css()  # system fonts only


def test_settings_from_page():
    assert settings_from_page(True, 3.0, 7.0, ["eye"]) == RestoreSettings(True, 3, 7, ("eye",))
    assert settings_from_page(False, None, None, []) == RestoreSettings(False, None, 0, ())
    assert settings_from_page(False, 2.5, 1, None).steps == 2.5  # refused later with the CLI's message


def test_page_shows_the_restoration(restorer, face_upload):
    web = restorer.restore(face_upload, RestoreSettings(aligned=True, steps=2, seed=1))
    summary, (photo, boxes), figure, rows, (before, after), heatmap, png_button, zip_button = page_outputs(web)
    face = web.result.faces[0]
    assert summary.startswith("**face.png** (aligned): 1 face(s)\n")
    assert photo is web.image and boxes == [((0, 0, 64, 64), boxes[0][1])] and boxes[0][1].startswith("face 1")
    assert [row[2] for row in rows] == list(face["probabilities"].values())
    assert len(figure.axes) == 1
    assert [round(bar.get_width(), 6) for bar in figure.axes[0].patches] == [row[2] for row in rows]
    assert np.array_equal(before, web.image) and np.array_equal(after, web.result.image)
    assert heatmap == str(web.report.heatmap)
    assert png_button == {"__type__": "update", "value": str(web.restored_png), "visible": True}
    assert zip_button == {"__type__": "update", "value": str(web.report_zip), "visible": True}
    assert json.loads(web.report.json.read_text())["faces"][0]["probabilities"] == face["probabilities"]


def test_handler_errors_are_gradio_errors_with_the_cli_line(restorer, tmp_path, face_upload, capsys):
    app = build_app(restorer, aligned=True, steps=2)
    assert app.analytics_enabled is False
    restore = restore_handler(app)
    with pytest.raises(gr.Error, match="drop or pick a photo first"):
        restore(None, True, 2, 0, ["white", "eye"])
    (tmp_path / "upload" / "notes.png").write_text("not an image")
    with pytest.raises(gr.Error) as info:
        restore(str(tmp_path / "upload" / "notes.png"), True, 2, 0, ["white", "eye"])
    assert info.value.message == "notes.png: not a readable image (unknown or corrupt format)"
    assert "error: notes.png: not a readable image" in capsys.readouterr().err  # the server's log, one line
    outputs = restore(str(face_upload), True, 2, 0, ["white", "eye"])  # and the next upload works
    assert len(outputs) == 8 and outputs[0].startswith("**face.png**")
    assert "face.png: found" in capsys.readouterr().out
