"""Post-processing after the app: configuration, determinism, what each stage does."""

from __future__ import annotations

import numpy as np
import pytest

from mofrr_core.retouch.postprocess import POSTPROCESS_PRESETS, postprocess, resolve_postprocess
from tests.retouch.helpers import psnr


def test_presets_and_shorthand_resolve():
    assert resolve_postprocess(None) is None and resolve_postprocess("none") is None
    app = resolve_postprocess("app")
    assert app["p"] == 0.8 and app["jpeg"] == {"p": 0.9, "quality": [60.0, 100.0]}
    assert resolve_postprocess(app) == app  # resolving is idempotent
    short = resolve_postprocess({"p": 0.5, "jpeg": [70, 90]})
    assert short == {"p": 0.5, "jpeg": {"p": 1.0, "quality": [70.0, 90.0]}}
    assert set(POSTPROCESS_PRESETS) >= {"none", "app", "jpeg"}


@pytest.mark.parametrize("bad,match", [("nope", "unknown preset 'nope'"), ({"blur": [1, 2]}, r"unknown key\(s\)"),
                                       ({"jpeg": [60, 120]}, r"postprocess.jpeg.quality: need 1"),
                                       ({"p": 2}, "postprocess.p: must be a probability"),
                                       ({"noise": {"p": 0.5, "amount": [1, 2]}}, "expected keys p and sigma")])
def test_bad_configurations_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        resolve_postprocess(bad)


def test_stages_apply_and_are_recorded(astronaut_256):
    image, _ = astronaut_256
    config = {"p": 1.0, "sharpen": [0.3, 0.3], "resample": [0.5, 0.5], "noise": [2.0, 2.0], "jpeg": [60, 60]}
    out, record = postprocess(image, np.random.default_rng(0), config)
    assert record["applied"] and record["jpeg"] == {"quality": 60} and record["resample"]["scale"] == 0.5
    assert set(record) == {"applied", "sharpen", "resample", "noise", "jpeg"}
    assert out.dtype == np.uint8 and out.shape == image.shape and 22 < psnr(image, out) < 40
    again, record_again = postprocess(image, np.random.default_rng(0), config)
    assert np.array_equal(out, again) and record == record_again
    light, _ = postprocess(image, np.random.default_rng(0), {"jpeg": [95, 95]})
    assert psnr(image, light) > psnr(image, out) + 5  # quality 95 alone changes far less


def test_probabilities_are_honoured(astronaut_256):
    image, _ = astronaut_256
    same, record = postprocess(image, np.random.default_rng(0), {"p": 0.0, "jpeg": [60, 100]})
    assert same is image and record == {"applied": False}
    qualities, applied = [], 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        _, record = postprocess(image[:32, :32], rng, {"p": 0.8, "jpeg": {"p": 0.5, "quality": [60, 100]}})
        applied += record["applied"]
        if "jpeg" in record:
            qualities.append(record["jpeg"]["quality"])
    assert 140 < applied < 180 and 0.35 < len(qualities) / applied < 0.65
    assert min(qualities) >= 60 and max(qualities) <= 100 and np.ptp(qualities) > 30


def test_denoise_stage_smooths_mildly_and_leaves_the_other_draws_alone(astronaut_256):
    image, _ = astronaut_256
    app, camera = resolve_postprocess("app"), resolve_postprocess("app-camera")
    assert camera == {**app, "denoise": {"p": 0.25, "colour": [10.0, 25.0]}}
    off = {**app, "denoise": {"p": 0.0, "colour": [10.0, 25.0]}}
    for seed in range(12):  # a stage that never fires changes nothing: the old stages draw what they drew
        a, record_a = postprocess(image, np.random.default_rng(seed), app)
        b, record_b = postprocess(image, np.random.default_rng(seed), off)
        assert np.array_equal(a, b) and record_a == record_b
    mild, record = postprocess(image, np.random.default_rng(0), {"denoise": [10, 10]})
    strong, _ = postprocess(image, np.random.default_rng(0), {"denoise": [60, 60]})
    assert set(record) == {"applied", "denoise"} and record["denoise"]["colour"] == 10.0
    assert 1.5 <= record["denoise"]["space"] <= 3.0
    assert psnr(image, strong) < psnr(image, mild) < 60  # it changes the photo, more with a wider colour sigma
    detail = [np.abs(np.diff(x.astype(np.float32), axis=1)).mean() for x in (image, mild, strong)]
    assert detail[0] > detail[1] > detail[2]  # fine detail goes, as a denoiser's does


def test_final_denoise_runs_after_the_jpeg_and_leaves_the_other_draws_alone(astronaut_256):
    image, _ = astronaut_256
    camera, late = resolve_postprocess("app-camera"), resolve_postprocess("app-camera-late")
    assert late == {**camera, "final_denoise": {"p": 0.2, "colour": [10.0, 25.0]}}
    for seed in range(12):  # the final stage draws its own numbers: the others draw what they drew
        a, record_a = postprocess(image, np.random.default_rng(seed), camera)
        b, record_b = postprocess(image, np.random.default_rng(seed), {**late, "final_denoise": {"p": 0.0,
                                                                                             "colour": [10, 25]}})
        assert np.array_equal(a, b) and record_a == record_b
    jpeg_only, _ = postprocess(image, np.random.default_rng(0), {"jpeg": [60, 60]})
    last, record = postprocess(image, np.random.default_rng(0), {"jpeg": [60, 60], "final_denoise": [25, 25]})
    first, _ = postprocess(image, np.random.default_rng(0), {"jpeg": [60, 60], "denoise": [25, 25]})
    assert list(record) == ["applied", "jpeg", "final_denoise"]

    def block_step(x):  # mean jump across the 8x8 block borders over the mean jump elsewhere
        d = np.abs(np.diff(x.astype(np.float32).mean(-1), axis=1)).mean(0)
        return d[7::8].mean() / np.delete(d, np.s_[7::8]).mean()

    assert block_step(last) < block_step(first) and block_step(last) < block_step(jpeg_only)
