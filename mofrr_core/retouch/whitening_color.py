"""More whitening apis: per-channel gains, HSV, YCbCr and exposure/gamma in linear light.

Each api brightens (and slightly re-tints) a declared region: ``gains`` and ``ycbcr`` the face
oval (features included, as cruder apps do), ``hsv`` the skin mask, ``exposure`` the whole image.
"""

from __future__ import annotations

import cv2
import numpy as np

from mofrr_core.retouch.landmarks import FaceLandmarks
from mofrr_core.retouch.masks import region_mask
from mofrr_core.retouch.whitening import GAIN, blend
from mofrr_core.spec import RetouchResult


def draw_common(rng: np.random.Generator) -> dict:
    """Mask feather, opacity and amount jitter every whitening api draws first."""
    return {"feather": float(rng.uniform(0.03, 0.07)), "opacity": float(rng.uniform(0.85, 1.0)),
            "jitter": float(rng.uniform(0.75, 1.25))}


def apply_whitening(image: np.ndarray, landmarks: FaceLandmarks, strength: float, region: str, params: dict,
                    record: dict, target_fn) -> RetouchResult:
    """Blend ``target_fn(float RGB 0..1, amount) -> float RGB`` into ``region`` (amount grows with the strength)."""
    amount = float(np.clip(GAIN * strength * params["jitter"], 0.0, 1.0))
    record = {"op": "white", "strength": float(strength), "region": region, "amount": amount,
              "feather": params["feather"], "opacity": params["opacity"], **record}
    if strength <= 0:
        return RetouchResult(image.copy(), record)
    mask = region_mask(image, landmarks, region, params["feather"]) * params["opacity"]
    target = np.clip(target_fn(image.astype(np.float32) / 255.0, amount), 0.0, 1.0) * 255.0
    return RetouchResult(blend(image, target, mask), record)


def whiten_gains(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                 rng: np.random.Generator) -> RetouchResult:
    """Per-channel RGB gains (brighter, with a random pink/neutral/cool balance) on the face oval."""
    params = draw_common(rng)
    balance = rng.uniform([0.9, 0.85, 0.8], [1.1, 1.15, 1.3]).astype(np.float32)
    offset = float(rng.uniform(0.0, 0.04))  # lifted blacks, as "fade" sliders do

    def target(x: np.ndarray, amount: float) -> np.ndarray:
        return x * (1.0 + 0.7 * amount * balance) + offset * amount

    return apply_whitening(image, landmarks, strength, "face", params,
                   {"balance": [round(float(b), 4) for b in balance], "offset": offset}, target)


def whiten_hsv(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
               rng: np.random.Generator) -> RetouchResult:
    """HSV: value lifted towards 1 (power curve), saturation cut, on the skin mask."""
    params = draw_common(rng)
    value_power = float(rng.uniform(0.5, 1.0))
    saturation = float(rng.uniform(0.2, 0.6))

    def target(x: np.ndarray, amount: float) -> np.ndarray:
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
        v = hsv[..., 2]
        hsv[..., 2] = v + 1.6 * amount * (1.0 - v) * np.power(v, value_power)
        hsv[..., 1] *= 1.0 - saturation * amount
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)

    return apply_whitening(image, landmarks, strength, "skin", params,
                   {"value_power": value_power, "saturation": saturation}, target)


def whiten_ycbcr(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                 rng: np.random.Generator) -> RetouchResult:
    """YCbCr: luma through a shoulder curve, chroma pulled towards a rosy neutral, on the face oval."""
    params = draw_common(rng)
    shoulder = float(rng.uniform(1.0, 2.0))
    chroma = float(rng.uniform(0.1, 0.35))
    rosy = float(rng.uniform(0.0, 0.03))

    def target(x: np.ndarray, amount: float) -> np.ndarray:
        ycc = cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb)  # Y, Cr, Cb; chroma centred at 0.5
        y = ycc[..., 0]
        ycc[..., 0] = y + 1.0 * amount * (1.0 - y) * (1.0 - np.power(1.0 - y, shoulder))
        ycc[..., 1:] = 0.5 + (ycc[..., 1:] - 0.5) * (1.0 - chroma * amount)
        ycc[..., 1] += rosy * amount
        return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)

    return apply_whitening(image, landmarks, strength, "face", params,
                   {"shoulder": shoulder, "chroma": chroma, "rosy": rosy}, target)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, None)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)


def whiten_exposure(image: np.ndarray, landmarks: FaceLandmarks, strength: float,
                    rng: np.random.Generator) -> RetouchResult:
    """Whole image: exposure (EV) in linear light with a highlight roll-off, then a display gamma."""
    params = draw_common(rng)
    ev = float(rng.uniform(0.5, 1.0))
    gamma = float(rng.uniform(0.0, 0.3))
    rolloff = bool(rng.random() < 0.6)

    def target(x: np.ndarray, amount: float) -> np.ndarray:
        gain = 2.0 ** (2.2 * ev * amount)
        lin = srgb_to_linear(x)
        # exposure; with the roll-off gain*L / (1 + (gain-1)*L): 0 -> 0, 1 -> 1, slope gain in the shadows
        lin = gain * lin / (1.0 + (gain - 1.0) * lin) if rolloff else gain * lin
        out = linear_to_srgb(lin)
        return np.power(np.clip(out, 0.0, 1.0), 1.0 / (1.0 + gamma * amount))

    return apply_whitening(image, landmarks, strength, "image", params, {"ev": ev, "gamma": gamma, "rolloff": rolloff},
                   target)
