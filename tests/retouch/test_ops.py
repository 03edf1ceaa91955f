"""Every built-in retouching api: identity at 0, monotone in strength, stays in its declared region,
deterministic, resolution-free; plus what each type must do (brighten, smooth, slim, enlarge)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mofrr_core.plugins import get_retouch_ops
from mofrr_core.retouch.masks import REGIONS, polygon_mask
from tests.retouch.helpers import BUILTIN_APIS, builtin_apis, psnr


def op_fn(op: str, api: str):
    return get_retouch_ops()[op][api].fn


def region_of(op: str, api: str) -> str:
    return get_retouch_ops()[op][api].region


def feature_interiors(shape, landmarks) -> list[np.ndarray]:
    """Eyes and lips, eroded by a pixel: what a skin-only api must leave alone."""
    return [cv2.erode(polygon_mask(shape, region), np.ones((3, 3), np.uint8)) > 0
            for region in [*landmarks.eyes(), landmarks.lips()]]


def far_from_face(shape, landmarks, distance: float) -> np.ndarray:
    """Pixels further than ``distance`` x face size from the face oval's convex hull."""
    inside = polygon_mask(shape, landmarks.face_oval()).astype(np.uint8)
    dist = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    return dist > distance * landmarks.face_size()


@pytest.mark.parametrize("op,api", BUILTIN_APIS)
def test_strength_zero_is_identity(op, api, data_face, astronaut_crop):
    for image, landmarks in [data_face[1:], astronaut_crop]:
        out = op_fn(op, api)(image, landmarks, 0.0, np.random.default_rng(0))
        assert out.image.dtype == np.uint8 and out.image.shape == image.shape
        assert np.array_equal(out.image, image)


@pytest.mark.parametrize("op,api", BUILTIN_APIS)
def test_degradation_grows_with_strength(op, api, data_face, astronaut_crop):
    for image, landmarks in [data_face[1:], astronaut_crop]:
        values = [psnr(image, op_fn(op, api)(image, landmarks, s, np.random.default_rng(3)).image)
                  for s in (0.3, 0.6, 1.0)]
        assert values[0] > values[1] > values[2], values
        assert values[2] < 50, f"{op}/{api} at strength 1 barely changes the image: {values}"


@pytest.mark.parametrize("op,api", BUILTIN_APIS)
def test_changes_stay_in_the_declared_region(op, api, padded_face, astronaut_256):
    """skin/face apis: nothing changes 40 % of the face size away from the oval (skin: nor in eyes and lips);
    image apis say so and do change the background."""
    declared = region_of(op, api)
    for image, landmarks in [padded_face, astronaut_256]:
        result = op_fn(op, api)(image, landmarks, 1.0, np.random.default_rng(1))
        out, region = result.image, result.record.get("region", declared)  # an api may draw a narrower region
        assert REGIONS.index(region) <= REGIONS.index(declared), f"{op}/{api} used {region} beyond {declared}"
        far = far_from_face(image.shape, landmarks, 0.4)
        assert far.sum() > 0.3 * far.size  # the check covers a real background area
        change = np.abs(out.astype(np.int16) - image.astype(np.int16)).max(axis=2)
        assert change[~far].max() >= 3  # the api did change the face
        if region == "image":
            assert change[far].max() >= 1, f"{op}/{api} declares region 'image' but left the background alone"
            continue
        assert change[far].max() < 1, f"{op}/{api} ({region}) changed background pixels by up to {change[far].max()}"
        if region == "skin":
            for inside in feature_interiors(image.shape, landmarks):
                if inside.sum() > 10:
                    assert change[inside].max() <= 2, f"{op}/{api} (skin) changed an eye or the lips"


@pytest.mark.parametrize("op,api", BUILTIN_APIS)
def test_deterministic_per_seed(op, api, data_face):
    _, image, landmarks = data_face
    fn = op_fn(op, api)
    first = fn(image, landmarks, 0.7, np.random.default_rng(5))
    again = fn(image, landmarks, 0.7, np.random.default_rng(5))
    other = fn(image, landmarks, 0.7, np.random.default_rng(6))
    assert np.array_equal(first.image, again.image) and first.record == again.record
    assert not np.array_equal(first.image, other.image)
    assert first.record["op"] == op and first.record["strength"] == pytest.approx(0.7)


@pytest.mark.parametrize("op,api", BUILTIN_APIS)
def test_effect_scales_with_the_face_not_the_pixels(op, api, data_face):
    """The same edit on a 2x upsampled image (and landmarks), seen at 224 px, is nearly the same edit."""
    _, image, landmarks = data_face
    fn = op_fn(op, api)
    small = fn(image, landmarks, 0.8, np.random.default_rng(2)).image
    big_input = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    big = fn(big_input, landmarks.scaled(2.0), 0.8, np.random.default_rng(2)).image
    down = cv2.resize(big, image.shape[1::-1], interpolation=cv2.INTER_AREA)
    effect_small = psnr(image, small)
    effect_big = psnr(cv2.resize(big_input, image.shape[1::-1], interpolation=cv2.INTER_AREA), down)
    assert abs(effect_small - effect_big) < 2.5, (effect_small, effect_big)
    assert psnr(small, down) > effect_small + 3  # the two edits agree better than either matches the input


@pytest.mark.parametrize("op,api", builtin_apis("white"))
def test_whitening_brightens_the_skin(op, api, data_face):
    from mofrr_core.retouch.masks import skin_mask

    _, image, landmarks = data_face
    mask = skin_mask(image.shape, landmarks) > 0.9
    out = op_fn(op, api)(image, landmarks, 1.0, np.random.default_rng(0)).image
    gain = out[mask].astype(float).mean() - image[mask].astype(float).mean()
    assert gain > 5, f"white/{api}: skin brightened by only {gain:.1f}"


@pytest.mark.parametrize("op,api", builtin_apis("smooth"))
def test_smoothing_removes_blemish_detail_and_keeps_the_mean(op, api, data_face):
    """Blemish-scale detail (a band-pass of 0.4-2 % of the face size) drops, the skin colour does not move."""
    from mofrr_core.retouch.masks import skin_mask

    _, image, landmarks = data_face
    mask = skin_mask(image.shape, landmarks) > 0.9
    size = landmarks.face_size()

    def blemish_detail(rgb: np.ndarray) -> float:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        band = cv2.GaussianBlur(grey, (0, 0), 0.004 * size) - cv2.GaussianBlur(grey, (0, 0), 0.02 * size)
        return float(np.abs(band)[mask].mean())

    before = blemish_detail(image)
    out = op_fn(op, api)(image, landmarks, 1.0, np.random.default_rng(0)).image
    after = blemish_detail(out)
    assert after < 0.8 * before, f"smooth/{api}: blemish-scale detail {before:.2f} -> {after:.2f}"
    assert abs(out[mask].astype(float).mean() - image[mask].astype(float).mean()) < 6  # not a whitening (> 8)


@pytest.mark.parametrize("op,api", builtin_apis("face"))
def test_lifting_shrinks_the_lower_face(op, api, padded_face):
    """A white face oval on black, warped with the same parameters: its area shrinks."""
    image, landmarks = padded_face
    oval = (polygon_mask(image.shape, landmarks.face_oval()) * 255).astype(np.uint8)
    oval_rgb = np.repeat(oval[..., None], 3, axis=2)
    warped = op_fn(op, api)(oval_rgb, landmarks, 1.0, np.random.default_rng(0)).image
    assert warped[..., 0].astype(float).sum() < 0.985 * oval.astype(float).sum()


@pytest.mark.parametrize("op,api", builtin_apis("eye"))
def test_eye_enlarging_magnifies_the_eye(op, api, padded_face):
    image, landmarks = padded_face
    eyes = np.zeros(image.shape[:2], np.float32)
    for eye in landmarks.eyes():
        eyes = np.maximum(eyes, polygon_mask(image.shape, eye))
    eyes_rgb = np.repeat((eyes * 255).astype(np.uint8)[..., None], 3, axis=2)
    warped = op_fn(op, api)(eyes_rgb, landmarks, 1.0, np.random.default_rng(0)).image
    ratio = warped[..., 0].astype(float).sum() / (eyes * 255).sum()
    assert 1.1 < ratio < 3.0, ratio


@pytest.mark.parametrize("api", ["bilateral", "guided", "surface", "median", "morph", "freqsep"])
def test_training_smoothings_draw_skin_face_or_image(api, padded_face):
    """Each region of REGION_SHARES is drawn for some seed, and each result stays in the region it records."""
    image, landmarks = padded_face
    far = far_from_face(image.shape, landmarks, 0.4)
    interiors = [inside for inside in feature_interiors(image.shape, landmarks) if inside.sum() > 10]
    seen = set()
    for seed in range(40):
        result = op_fn("smooth", api)(image, landmarks, 1.0, np.random.default_rng(seed))
        region = result.record["region"]
        if region in seen:
            continue
        seen.add(region)
        change = np.abs(result.image.astype(np.int16) - image.astype(np.int16)).max(axis=2)
        assert (change[far].max() >= 1) == (region == "image"), f"smooth/{api} ({region}): background"
        assert (max(change[inside].max() for inside in interiors) <= 2) == (region == "skin"), \
            f"smooth/{api} ({region}): eyes and lips"
        if seen == set(REGIONS):
            break
    assert seen == set(REGIONS)


def test_smoothing_region_forces_a_region_for_the_evaluation(padded_face):
    """smoothing_region("image") makes a held-out (skin) smoothing filter the whole photo, with the same draws."""
    from mofrr_core.retouch.smoothing import smoothing_region

    image, landmarks = padded_face
    far = far_from_face(image.shape, landmarks, 0.4)
    own = op_fn("smooth", "domain")(image, landmarks, 1.0, np.random.default_rng(3))
    with smoothing_region("image"):
        forced = op_fn("smooth", "domain")(image, landmarks, 1.0, np.random.default_rng(3))
        drawn = op_fn("smooth", "median")(image, landmarks, 1.0, np.random.default_rng(3))
    again = op_fn("smooth", "domain")(image, landmarks, 1.0, np.random.default_rng(3))
    assert own.record["region"] == again.record["region"] == "skin" and np.array_equal(own.image, again.image)
    assert forced.record["region"] == drawn.record["region"] == "image"
    assert {k: v for k, v in forced.record.items() if k != "region"} == \
        {k: v for k, v in own.record.items() if k != "region"}
    change = np.abs(forced.image.astype(np.int16) - image.astype(np.int16)).max(axis=2)
    assert change[far].max() >= 1
    with pytest.raises(ValueError, match="smoothing region"), smoothing_region("hair"):
        pass
