"""The bad and unusual inputs a new user tried (one test per case): extreme sizes, report leftovers and
clashes, long names, SIGTERM, setup errors, ``--experts``."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image

import mofrr_core.io as mofrr_io
import mofrr_core.restore as restore_module
from mofrr_core.io import MAX_ASPECT, MAX_SIDE, ImageLoadError, load_image, partial_prefix, save_image_atomic
from tests.robustness.helpers import FakeDetector, install_fake_provider


@pytest.fixture
def photos(tmp_path, astronaut_face):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ["a", "b", "c"]:
        Image.fromarray(astronaut_face).save(folder / f"{name}.png")
    return folder


# -- item 2: extreme sizes never reach OpenCV / MediaPipe ------------------------------------------------
@pytest.mark.parametrize("width,height,reason", [
    (32767, 16, "at most 16384 px per side"), (16, 40000, "at most 16384 px per side"),
    (16 * MAX_ASPECT + 16, 16, "too elongated"), (16, 16 * MAX_ASPECT + 1, "too elongated"),
])
def test_extreme_sizes_are_refused_from_the_header(tmp_path, width, height, reason):
    path = tmp_path / "extreme.png"
    Image.new("RGB", (width, height)).save(path)
    with pytest.raises(ImageLoadError, match=reason) as error:
        load_image(path)
    assert str(path) in str(error.value)
    Image.new("RGB", (16 * MAX_ASPECT, 16)).save(path)  # at the limits: fine
    assert load_image(path).shape == (16, 16 * MAX_ASPECT, 3)
    assert MAX_SIDE < 32767  # OpenCV's remap aborts the process from 32767 px on


def test_an_extreme_file_in_a_batch_is_one_error_line(photos, tmp_path, cli, monkeypatch):
    Image.new("RGB", (32767, 16)).save(photos / "wide.png")  # the 1.5 KB PNG of the issue
    detector = FakeDetector({})
    install_fake_provider(monkeypatch, detector)
    result = cli(photos, "-o", tmp_path / "out", "--aligned")
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {photos / 'wide.png'}: image is too large (32767x16 px; at most {MAX_SIDE} px "
                      "per side); downscale it first"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]


def test_restore_photo_refuses_extreme_arrays_before_the_detector(tiny_pipeline):
    detector = FakeDetector({})
    with pytest.raises(ValueError, match="image: image is too large"):
        restore_module.restore_photo(tiny_pipeline, np.zeros((16, 32767, 3), np.uint8), aligned=False,
                                     detector=detector)
    assert detector.calls == 0


def test_the_mediapipe_provider_refuses_extreme_arrays_itself():
    pytest.importorskip("mediapipe")
    from mofrr_core.builtin.landmark_providers import mediapipe_factory

    with pytest.raises(ValueError, match="too large"):
        mediapipe_factory()(np.zeros((16, 32767, 3), np.uint8))


# -- items 3 and 4: the report folder ------------------------------------------------------------------
def test_leftover_partials_in_the_report_folder_are_removed_on_resume(photos, tmp_path, cli):
    out, report = tmp_path / "out", tmp_path / "report"
    report.mkdir()
    leftovers = [report / f".b.heatmap.png.x7k2m9q1{mofrr_io.PARTIAL_SUFFIX}",
                 report / f".a.json.x7k2m9q1{mofrr_io.PARTIAL_SUFFIX}"]
    for path in leftovers:
        path.write_bytes(b"half")
    unrelated = report / "notes.partial.txt"
    unrelated.write_text("not ours")
    assert cli(photos, "-o", out, "--aligned", "--report", report, "--skip-existing").code == 0
    assert not any(path.exists() for path in leftovers) and unrelated.exists()
    assert len(list(report.glob("*.json"))) == 3


def test_a_report_and_an_output_image_may_not_share_a_name(photos, tmp_path, cli):
    Image.open(photos / "a.png").save(photos / "a.heatmap.png")
    out = tmp_path / "out"
    for flags in ([], ["--overwrite"]):
        result = cli(photos / "a.png", photos / "a.heatmap.png", "-o", out, "--report", out, "--aligned", *flags)
        assert result.code == 2, result.err
        assert "a.heatmap.png" in result.err and "same name" in result.err and "--report" in result.err
    assert not out.exists() or not any(out.iterdir())
    assert cli(photos / "a.png", photos / "a.heatmap.png", "-o", out, "--report", tmp_path / "rep",
               "--aligned").code == 0


# -- item 5: long names --------------------------------------------------------------------------------
def test_a_legal_250_character_name_is_written(tmp_path, cli, astronaut_face):
    name = "n" * 246 + ".png"
    Image.fromarray(astronaut_face).save(tmp_path / name)
    result = cli(tmp_path / name, "-o", tmp_path / "out", "--aligned")
    assert result.code == 0, result.err
    assert (tmp_path / "out" / name).is_file() and not list((tmp_path / "out").glob(".*"))
    too_long = cli(tmp_path / name, "-o", tmp_path / "out2", "--aligned", "--report", tmp_path / "rep")
    assert too_long.code == 2 and "file name too long" in too_long.err and ".heatmap.png: " in too_long.err


def test_temporary_names_fit_and_stay_distinct(tmp_path):
    longest = tmp_path / ("é" * 127 + ".p")  # 256 bytes: too long itself, but its prefix must still fit
    for dst in (tmp_path / "x.png", tmp_path / ("a" * 251 + ".png"), tmp_path / ("a" * 250 + "b.png"), longest):
        assert len(os.fsencode(partial_prefix(dst))) + 8 + len(mofrr_io.PARTIAL_SUFFIX) <= 255
    assert partial_prefix(tmp_path / ("a" * 251 + ".png")) != partial_prefix(tmp_path / ("a" * 250 + "b.png"))
    save_image_atomic(np.zeros((4, 4, 3), np.uint8), tmp_path / ("a" * 251 + ".png"))
    assert [p.name for p in tmp_path.iterdir()] == ["a" * 251 + ".png"]


# -- item 6: SIGTERM -----------------------------------------------------------------------------------
def test_sigterm_is_an_interrupt(photos, tmp_path, cli, monkeypatch):
    real, calls = restore_module.restore_photo, []

    def terminated_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # what a plain `kill` sends
        return real(*args, **kwargs)

    monkeypatch.setattr(restore_module, "restore_photo", terminated_on_second)
    before = signal.getsignal(signal.SIGTERM)
    result = cli(photos, "-o", tmp_path / "out", "--aligned")
    assert result.code == 130 and result.err.strip().endswith("interrupted")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]  # b not written
    assert signal.getsignal(signal.SIGTERM) is before  # the handler does not outlive the command


# -- items 7 and 8: setup errors are exit 2 with a message naming the value ----------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_device_is_a_setup_error(photos, tmp_path, cli):
    result = cli(photos / "a.png", "-o", tmp_path / "out", "--aligned", "--device", "cuda")
    assert result.code == 2 and "--device cuda" in result.err and "not available" in result.err
    result = cli(photos / "a.png", "-o", tmp_path / "out", "--aligned", "--device", "toaster")
    assert result.code == 2 and "toaster" in result.err


@pytest.mark.parametrize("seed", [str(2**64), str(-(2**63) - 1), "1e3"])
def test_out_of_range_seed_is_a_usage_error(photos, tmp_path, cli, capsys, seed):
    with pytest.raises(SystemExit) as exit_:
        cli(photos / "a.png", "-o", tmp_path / "out", "--aligned", "--seed", seed)
    assert exit_.value.code == 2 and "--seed" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_largest_seed_works(photos, tmp_path, cli):
    assert cli(photos / "a.png", "-o", tmp_path / "out", "--aligned", "--seed", str(2**64 - 1)).code == 0


@pytest.mark.parametrize("text,message", [
    ("- router\n- combine\n", "expected a mapping"),
    ("resolution: abc\n", "resolution: expected a number, got 'abc'"),
    ("sampling:\n  num_inference_steps: many\n", "sampling.num_inference_steps"),
    ("sampling: 7\n", "sampling: expected a mapping"),
])
def test_broken_registry_is_a_setup_error_naming_the_key(photos, tmp_path, cli, text, message):
    registry = tmp_path / "registry.yaml"
    registry.write_text(text)
    result = cli(photos / "a.png", "-o", tmp_path / "out", "--aligned", "--registry", registry, pipeline=False)
    assert result.code == 2 and message in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize("experts,message", [("bogus", "unknown expert(s) bogus"), (",", "no expert name given"),
                                             ("white,nope", "unknown expert(s) nope")])
def test_bad_experts_option_is_a_setup_error(photos, tmp_path, cli, experts, message):
    result = cli(photos / "a.png", "-o", tmp_path / "out", "--aligned", "--experts", experts, pipeline=False)
    assert result.code == 2 and message in result.err and "installed: " in result.err, result.err
    assert not (tmp_path / "out").exists()


def test_any_unexpected_setup_failure_is_exit_2_with_a_message(photos, tmp_path, cli, monkeypatch):
    def broken(*args, **kwargs):
        raise AssertionError

    monkeypatch.setattr(restore_module, "load_pipeline", broken)
    result = cli(photos / "a.png", "-o", tmp_path / "out", "--aligned")
    assert result.code == 2 and result.err.strip() == "error: AssertionError"
