"""What happens to a photo after the beauty app: denoising, sharpening, resampling, noise, JPEG, a last denoising.

The data engine applies this to the *input* of a pair (the target stays the original), and with
the same distribution to untouched inputs too, so that compression or resampling is never a cue
for "retouched". A configuration is a preset name or a mapping::

    postprocess: app                                     # the preset below
    postprocess: {p: 0.8, jpeg: [60, 100]}               # shorthand: stage: [lo, hi] (always applied)
    postprocess: {p: 0.8, jpeg: {p: 0.9, quality: [60, 100]}, resample: {p: 0.5, scale: [0.5, 0.95]},
                  sharpen: {p: 0.3, amount: [0.1, 0.6]}, noise: {p: 0.3, sigma: [0.5, 3.0]},
                  denoise: {p: 0.25, colour: [10, 25]}, final_denoise: {p: 0.2, colour: [10, 25]}}

``p`` is the chance that the photo is post-processed at all, each stage's ``p`` the chance of
that stage. Stages run in the order denoise (a camera's or app's mild bilateral filter over the whole
photo, colour sigma ``colour``, below the beauty smoothing of the engine), sharpen, resample (down, then
back up), noise, JPEG, and a final denoising (the same filter on the decoded photo, saved without a new JPEG:
it wipes the 8x8 block pattern of the JPEG from the whole photo, as a smoothing filter wipes it from a face).
Preset ``app-camera`` is ``app`` plus the first denoising, ``app-camera-late`` that and the final one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

# stage -> its parameter, in the order the random numbers are drawn (a new stage goes last: old draws stay)
STAGES = {"sharpen": "amount", "resample": "scale", "noise": "sigma", "jpeg": "quality", "denoise": "colour",
          "final_denoise": "colour"}
ORDER = ("denoise", "sharpen", "resample", "noise", "jpeg", "final_denoise")  # the order the stages run in
LIMITS = {"amount": (0.0, 3.0), "scale": (0.1, 1.0), "sigma": (0.0, 25.0), "quality": (1, 100), "colour": (0.0, 100.0)}
POSTPROCESS_PRESETS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "app": {"p": 0.8, "sharpen": {"p": 0.3, "amount": [0.1, 0.6]}, "resample": {"p": 0.5, "scale": [0.5, 0.95]},
            "noise": {"p": 0.3, "sigma": [0.5, 3.0]}, "jpeg": {"p": 0.9, "quality": [60, 100]}},
    "jpeg": {"p": 1.0, "jpeg": {"p": 1.0, "quality": [60, 100]}},
}
POSTPROCESS_PRESETS["app-camera"] = {**POSTPROCESS_PRESETS["app"], "denoise": {"p": 0.25, "colour": [10.0, 25.0]}}
POSTPROCESS_PRESETS["app-camera-late"] = {**POSTPROCESS_PRESETS["app-camera"],
                                          "final_denoise": {"p": 0.2, "colour": [10.0, 25.0]}}
INTERPOLATIONS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


def named_preset(name: str, presets: Mapping[str, Any], option: str) -> Any:
    """``presets[name]``; an unknown name is a ``ValueError`` naming ``option`` and the known presets."""
    if name not in presets:
        raise ValueError(f"{option}: unknown preset {name!r} (known: {', '.join(presets)})")
    return presets[name]


def resolve_postprocess(config: str | Mapping[str, Any] | bool | None) -> dict[str, Any] | None:
    """A validated ``{"p": float, stage: {"p": float, key: [lo, hi]}}`` or ``None`` (off)."""
    if config is None or config is False:
        return None
    if isinstance(config, str):
        return resolve_postprocess(named_preset(config, POSTPROCESS_PRESETS, "postprocess"))
    if not isinstance(config, Mapping):
        raise ValueError(f"postprocess: expected a preset name or a mapping, got {config!r}")
    unknown = set(config) - {"p", *STAGES}
    if unknown:
        raise ValueError(f"postprocess: unknown key(s) {sorted(unknown)} (known: p, {', '.join(STAGES)})")
    out: dict[str, Any] = {"p": check_probability(config.get("p", 1.0), "postprocess.p")}
    for stage, key in STAGES.items():
        if stage not in config or config[stage] is None:
            continue
        value = config[stage]
        spec = {"p": 1.0, key: value} if not isinstance(value, Mapping) else dict(value)
        if set(spec) - {"p", key}:
            raise ValueError(f"postprocess.{stage}: expected keys p and {key}, got {sorted(spec)}")
        lo, hi = check_range(spec.get(key), f"postprocess.{stage}.{key}", LIMITS[key])
        out[stage] = {"p": check_probability(spec.get("p", 1.0), f"postprocess.{stage}.p"), key: [lo, hi]}
    return out


def check_probability(value: Any, where: str) -> float:
    if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{where}: must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_range(value: Any, where: str, limits: tuple[float, float]) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{where}: expected [lo, hi], got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not limits[0] <= lo <= hi <= limits[1]:
        raise ValueError(f"{where}: need {limits[0]} <= lo <= hi <= {limits[1]}, got {value!r}")
    return lo, hi


def postprocess(image: np.ndarray, rng: np.random.Generator,
                config: str | Mapping[str, Any] | None) -> tuple[np.ndarray, dict[str, Any]]:
    """``image`` (uint8 HxWx3) after the configured stages, and the record of what was applied.

    Every random number is drawn up front (the same count whatever applies), so the record and the
    image are a function of the generator's state and the configuration only.
    """
    config = resolve_postprocess(config)
    if config is None:
        return image, {"applied": False}
    applied = bool(rng.random() < config["p"])
    draws = {stage: (rng.random(), rng.random(), rng.random()) for stage in STAGES}
    record: dict[str, Any] = {"applied": applied}
    if not applied:
        return image, record
    out = image
    for stage in ORDER:
        key = STAGES[stage]
        if stage not in config or draws[stage][0] >= config[stage]["p"]:
            continue
        lo, hi = config[stage][key]
        value = lo + (hi - lo) * draws[stage][1]
        out, record[stage] = _apply(stage, out, value, draws[stage][2])
    return out, record


def _apply(stage: str, image: np.ndarray, value: float, u: float) -> tuple[np.ndarray, dict[str, Any]]:
    h, w = image.shape[:2]
    if stage == "sharpen":  # unsharp mask, radius 0.7-1.5 px
        radius = 0.7 + 0.8 * u
        x = image.astype(np.float32)
        out = x + value * (x - cv2.GaussianBlur(x, (0, 0), radius))
        return np.clip(np.rint(out), 0, 255).astype(np.uint8), {"amount": round(value, 4), "radius": round(radius, 3)}
    if stage in ("denoise", "final_denoise"):  # bilateral, 5 px, spatial sigma 1.5-3 px
        space = 1.5 + 1.5 * u
        return cv2.bilateralFilter(image, 5, value, space), {"colour": round(value, 4), "space": round(space, 3)}
    if stage == "resample":
        down, up = list(INTERPOLATIONS)[int(u * 3) % 3], list(INTERPOLATIONS)[int(u * 9) % 3]
        small = cv2.resize(image, (max(int(round(w * value)), 1), max(int(round(h * value)), 1)),
                           interpolation=INTERPOLATIONS[down])
        up_flag = cv2.INTER_LINEAR if up == "area" else INTERPOLATIONS[up]
        return cv2.resize(small, (w, h), interpolation=up_flag), {"scale": round(value, 4), "down": down, "up": up}
    if stage == "noise":  # luminance-heavy Gaussian noise (u: share of chroma noise)
        seed = int(u * 2**31)
        noise_rng = np.random.default_rng(seed)
        luma = noise_rng.normal(0.0, value, (h, w, 1))
        chroma = noise_rng.normal(0.0, value, (h, w, 3)) * 0.5 * u
        out = image.astype(np.float32) + luma + chroma
        return np.clip(np.rint(out), 0, 255).astype(np.uint8), {"sigma": round(value, 4)}
    quality = int(round(value))
    return jpeg_roundtrip(image, quality), {"quality": quality}


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """RGB ``image`` saved as a JPEG of ``quality`` (OpenCV, 4:2:0) and read back."""
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding at quality {quality} failed")
    return np.ascontiguousarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1])
