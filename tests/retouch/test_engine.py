"""retouch(): order, records, api choice and exclusion, NoFaceError; random_ops; sample_strength; plugins."""

from __future__ import annotations

import numpy as np
import pytest

from mofrr_core.plugins import get_retouch_ops
from mofrr_core.retouch import TYPES, FaceLandmarks, NoFaceError, random_ops, retouch, sample_strength
from mofrr_core.retouch.eye import enlarge_eyes
from mofrr_core.retouch.whitening import whiten_curve
from tests.retouch.helpers import LEGACY_APIS, psnr


def test_builtin_ops_are_registered_through_the_plugin_manager():
    ops = get_retouch_ops()
    assert set(TYPES) <= set(ops)
    assert all((op, api) in {(o, a) for o in ops for a in ops[o]} for op, api in LEGACY_APIS)  # names kept
    assert ops["eye"]["bulge"].fn is enlarge_eyes and ops["white"]["curve"].fn is whiten_curve
    assert all(spec.distribution == "mofrr" for op in TYPES for spec in ops[op].values())
    for op in TYPES:
        assert len(ops[op]) >= 8, f"{op}: only {sorted(ops[op])}"
        assert all(spec.family and spec.region in ("skin", "face", "image") for spec in ops[op].values())


def test_retouch_applies_ops_in_order_and_records_them(data_face):
    _, image, landmarks = data_face
    result = retouch(image, landmarks, ["eye", "white"], np.random.default_rng(0), strengths=[0.8, 0.6],
                     apis={"white": "curve", "eye": "bulge"})
    # the same ops composed by hand with the same random stream
    rng = np.random.default_rng(0)
    expected = whiten_curve(enlarge_eyes(image, landmarks, 0.8, rng).image, landmarks, 0.6, rng).image
    assert np.array_equal(result.image, expected)
    ops = result.record["ops"]
    assert [(o["op"], o["api"], o["strength"]) for o in ops] == [("eye", "bulge", 0.8), ("white", "curve", 0.6)]
    assert "falloff" in ops[0] and "curve" in ops[1]  # each op's own record is kept
    assert result.record["types"] == ["eye", "white"]
    reverse = retouch(image, landmarks, ["white", "eye"], np.random.default_rng(0), strengths=[0.6, 0.8],
                      apis={"white": "curve", "eye": "bulge"})
    assert not np.array_equal(reverse.image, result.image)
    assert psnr(image, result.image) < 40


def test_default_strengths_come_from_sample_strength(data_face):
    _, image, landmarks = data_face
    result = retouch(image, landmarks, ["eye"], np.random.default_rng(4))
    rng = np.random.default_rng(4)
    rng.integers(len(get_retouch_ops()["eye"]))  # the api draw
    assert result.record["ops"][0]["strength"] == pytest.approx(sample_strength(rng))


def test_exclude_apis_is_honoured(astronaut_crop):
    image, landmarks = astronaut_crop
    ops = get_retouch_ops()
    seen, kept = set(), set()
    for seed in range(60):
        seen.add(retouch(image, landmarks, ["white"], np.random.default_rng(seed)).record["ops"][0]["api"])
        if seed < 8:
            record = retouch(image, landmarks, ["white", "smooth"], np.random.default_rng(seed),
                             exclude_apis={"white": set(ops["white"]) - {"lab"},
                                           "smooth": sorted(set(ops["smooth"]) - {"bilateral"})}).record
            kept.update((o["op"], o["api"]) for o in record["ops"])
    assert seen == set(ops["white"])  # every api is drawn without exclusion
    assert kept == {("white", "lab"), ("smooth", "bilateral")}
    with pytest.raises(ValueError, match="every api is excluded"):
        retouch(image, landmarks, ["eye"], np.random.default_rng(0), exclude_apis={"eye": list(ops["eye"])})
    with pytest.raises(KeyError, match="no api 'nope'"):
        retouch(image, landmarks, ["eye"], np.random.default_rng(0), apis={"eye": "nope"})


def test_bad_arguments_are_named(astronaut_crop):
    image, landmarks = astronaut_crop
    rng = np.random.default_rng(0)
    with pytest.raises(KeyError, match="unknown retouch op"):
        retouch(image, landmarks, ["tattoo"], rng)
    with pytest.raises(ValueError, match=r"strengths must be in \[0, 1\]"):
        retouch(image, landmarks, ["eye"], rng, strengths=[1.5])
    with pytest.raises(ValueError, match="1 strengths for 2 ops"):
        retouch(image, landmarks, ["eye", "white"], rng, strengths=[0.5])
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        retouch(image.astype(np.float32), landmarks, ["eye"], rng)


@pytest.mark.parametrize("case", ["none", "nan", "collapsed", "outside", "too_few"])
def test_no_face_error_on_bad_landmarks(case, astronaut_crop):
    image, landmarks = astronaut_crop
    points = landmarks.points.copy()
    bad = {
        "none": None,
        "nan": np.where(np.arange(len(points))[:, None] == 5, np.nan, points),
        "collapsed": np.full_like(points, 30.0),
        "outside": points + 1000.0,
        "too_few": points[:10],
    }[case]
    with pytest.raises(NoFaceError, match="no face found in face_0042.jpg"):
        retouch(image, bad, ["white"], np.random.default_rng(0), where="face_0042.jpg")
    assert issubclass(NoFaceError, ValueError)


def test_random_ops_draws_two_to_four_distinct_types():
    counts, firsts = set(), set()
    for seed in range(40):
        ops = random_ops(np.random.default_rng(seed))
        assert 2 <= len(ops) <= 4 and len(set(ops)) == len(ops) and set(ops) <= set(TYPES)
        counts.add(len(ops))
        firsts.add(ops[0])
    assert counts == {2, 3, 4} and firsts == set(TYPES)
    assert random_ops(np.random.default_rng(0), ["eye", "lips"], 2, 4) in (["eye", "lips"], ["lips", "eye"])
    with pytest.raises(ValueError, match="min_ops=3"):
        random_ops(np.random.default_rng(0), ["eye", "lips"], 3, 4)


def test_sample_strength_distribution():
    rng = np.random.default_rng(0)
    values = np.array([sample_strength(rng) for _ in range(2000)])
    assert 0.0 < values.min() and values.max() <= 1.0
    assert values.min() >= 0.25 and np.mean(values) == pytest.approx(0.625, abs=0.02)
    assert np.histogram(values, bins=5, range=(0.25, 1.0))[0].min() > 300  # every degree of edit is common


def test_dlib68_landmarks_drive_the_same_ops(data_face):
    """A 68-point face (iBUG order) built from the mesh: the regions match, every op runs and stays local."""
    from tests.retouch.test_landmarks import mesh_to_dlib68

    _, image, landmarks = data_face
    dlib = FaceLandmarks(mesh_to_dlib68(landmarks.points))
    assert dlib.scheme == "dlib68"
    np.testing.assert_allclose(dlib.eye_centres(), landmarks.eye_centres(), atol=0.06 * landmarks.interocular())
    for op in TYPES:
        result = retouch(image, dlib, [op], np.random.default_rng(0), strengths=[0.8])
        assert psnr(image, result.image) < 45


def test_check_face_and_choose_api_helpers(astronaut_crop):
    """The helpers the data engine (mofrr_core/data/pairs.py) calls directly."""
    from mofrr_core.retouch.engine import check_face, choose_api

    image, landmarks = astronaut_crop
    assert check_face(image, landmarks.points).scheme == "mediapipe478"
    with pytest.raises(NoFaceError, match="no face found in face 7"):
        check_face(image, landmarks.translated(0, 500), where="face 7")
    apis = get_retouch_ops()["smooth"]
    picks = {choose_api("smooth", apis, np.random.default_rng(seed)).api for seed in range(60)}
    assert picks == set(apis)
    assert choose_api("smooth", apis, np.random.default_rng(0), excluded=set(apis) - {"guided"}).api == "guided"
    assert choose_api("smooth", apis, np.random.default_rng(0), wanted="bilateral").api == "bilateral"
    with pytest.raises(ValueError, match="both requested and excluded"):
        choose_api("smooth", apis, np.random.default_rng(0), wanted="guided", excluded={"guided"})
