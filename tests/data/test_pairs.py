import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mofrr_core.data.degrees import DegreeThresholds, fit_degree_thresholds
from mofrr_core.data.pairs import RetouchPairs
from mofrr_core.metrics import psnr
from mofrr_core.retouch import training_apis
from mofrr_core.utils.image import to_uint8

KEYS = {"retouched", "original", "labels", "degrees", "key"}


def test_same_index_gives_identical_sample(shard_root):
    a = RetouchPairs(shard_root, split="train", resolution=64, num_ops=(2, 4), seed=5)
    b = RetouchPairs(shard_root, split="train", resolution=64, num_ops=(2, 4), seed=5)
    for i in (0, 3):
        x, y, z = a[i], a[i], b[i]
        assert set(x) == KEYS
        for k in ("retouched", "original", "labels", "degrees"):
            assert torch.equal(x[k], y[k]) and torch.equal(x[k], z[k])
        assert x["key"] == z["key"]
        assert x["retouched"].shape == (3, 64, 64) and x["retouched"].dtype == torch.float32
        assert -1 <= x["retouched"].min() < x["retouched"].max() <= 1
        assert x["labels"].dtype == torch.float32 and x["degrees"].dtype == torch.int64
        assert 2 <= x["labels"].sum() <= 4
        assert not torch.equal(x["retouched"], x["original"])
        assert torch.equal(x["labels"] > 0, x["degrees"] > 0) and x["degrees"].max() <= 5


def test_different_seeds_differ(shard_root):
    a = RetouchPairs(shard_root, split="train", resolution=64, num_ops=(1, 4), seed=0)
    b = RetouchPairs(shard_root, split="train", resolution=64, num_ops=(1, 4), seed=1)
    differ = [not torch.equal(a[i]["retouched"], b[i]["retouched"]) for i in range(3)]
    assert all(differ)
    assert torch.equal(a[0]["original"], b[0]["original"])  # same face (index 0), other retouching


def test_eye_only_dataset_labels_only_eye(shard_root):
    ds = RetouchPairs(shard_root, split="train", resolution=64, ops=["eye"], length=6)
    eye = ds.types.index("eye")
    for i in range(len(ds)):
        sample = ds.generate(i)
        assert [op["op"] for op in sample.ops] == ["eye"]
        expected = np.zeros(len(ds.types), np.float32)
        expected[eye] = 1
        np.testing.assert_array_equal(sample.labels, expected)
        assert 1 <= sample.degrees[eye] <= 5 and sample.degrees.sum() == sample.degrees[eye]
        assert sample.degree_source == "strength"
        assert sample.psnr < 100  # the eyes really changed


def test_length_wraps_faces_with_new_retouching(shard_root):
    ds = RetouchPairs(shard_root, split="train", resolution=64, ops=["white"], length=10)
    assert len(ds.faces) == 4 and len(ds) == 10
    first, again = ds.generate(1), ds.generate(5)  # same face, next pass
    assert first.key == again.key
    np.testing.assert_array_equal(first.original, again.original)
    assert first.ops[0]["strength"] != again.ops[0]["strength"]
    with pytest.raises(IndexError):
        ds.generate(10)


def test_clean_share_and_default_collate(shard_root):
    clean = RetouchPairs(shard_root, split="test", resolution=32, num_ops=(0, 4), p_clean=1.0, length=3)
    for i in range(3):
        sample = clean[i]
        assert torch.equal(sample["retouched"], sample["original"])
        assert sample["labels"].sum() == 0 and sample["degrees"].sum() == 0
    batch = next(iter(DataLoader(clean, batch_size=3)))
    assert batch["retouched"].shape == (3, 3, 32, 32) and batch["labels"].shape == (3, 4)
    assert len(batch["key"]) == 3
    mixed = RetouchPairs(shard_root, split="test", resolution=32, num_ops=(0, 4), p_clean=0.5, length=40)
    rng_clean = sum(not mixed._choose_ops(mixed._rng(i)) for i in range(40))
    assert 10 <= rng_clean <= 30


def test_single_op_share(shard_root):
    def counts(ds):
        sizes = [len(ds._choose_ops(ds._rng(i))) for i in range(400)]
        return {k: sizes.count(k) for k in range(5)}

    kw = dict(split="test", resolution=32, num_ops=(0, 4), p_clean=0.1, length=400)
    uniform = counts(RetouchPairs(shard_root, **kw))
    balanced = counts(RetouchPairs(shard_root, p_single=0.8, **kw))
    assert 60 <= uniform[1] <= 120 and 40 <= uniform[0] <= 80  # k uniform in 1..4 after 10 % clean
    assert 250 <= balanced[1] <= 320 and 40 <= balanced[0] <= 80  # 0.9 * 0.8 = 72 % single-op
    assert sum(balanced[k] for k in (2, 3, 4)) < sum(uniform[k] for k in (2, 3, 4)) / 2
    only_single = RetouchPairs(shard_root, p_single=0.2, **{**kw, "num_ops": (1, 1), "p_clean": 0.0})
    assert counts(only_single)[1] == 400  # p_single never adds ops beyond num_ops
    with pytest.raises(ValueError, match="p_single"):
        RetouchPairs(shard_root, p_single=1.5, **kw)


def test_types_drawn_independently(shard_root):
    kw = dict(split="test", resolution=32, num_ops=(0, 4), p_clean=0.25, length=2000)
    drawn = {}
    for name, extra in (("k first", {"p_single": 0.6}), ("independent", {"p_type": 0.3})):
        ds = RetouchPairs(shard_root, **kw, **extra)
        drawn[name] = np.array([[t in ds._choose_ops(ds._rng(i)) for t in ds.types] for i in range(2000)])

    def white_given_smooth(present):  # P(white | smoothed) - P(white | not smoothed)
        white, smooth = present[:, 0], present[:, 1]
        return white[smooth].mean() - white[~smooth].mean()

    assert white_given_smooth(drawn["k first"]) > 0.15  # drawing k first: a smoothing predicts a whitening
    assert abs(white_given_smooth(drawn["independent"])) < 0.06
    independent = drawn["independent"]
    assert np.allclose(independent.mean(0), 0.3, atol=0.04)
    assert abs((~independent.any(1)).mean() - 0.7**4) < 0.04  # p_clean is not used
    with pytest.raises(ValueError, match="p_type"):
        RetouchPairs(shard_root, p_type=-0.1, **kw)


def test_cross_api_protocol(shard_root):
    others = sorted(set(training_apis()["smooth"]) - {"bilateral"})
    train = RetouchPairs(shard_root, split="train", resolution=32, ops=["smooth"], length=8,
                         exclude_apis={"smooth": others})
    test = RetouchPairs(shard_root, split="test", resolution=32, ops=["smooth"], length=4, apis={"smooth": "guided"})
    assert {train.generate(i).ops[0]["api"] for i in range(8)} == {"bilateral"}
    assert {test.generate(i).ops[0]["api"] for i in range(4)} == {"guided"}


def test_psnr_degrees_with_fitted_thresholds(shard_root, tmp_path):
    ops = ["white", "smooth", "face", "eye"]
    thresholds = fit_degree_thresholds(shard_root, n=6, resolution=32, ops=ops, cache_dir=tmp_path, progress=False)
    cached = list(tmp_path.glob("degree-thresholds-*.json"))
    assert len(cached) == 1 and DegreeThresholds.load(cached[0]).cuts == thresholds.cuts
    again = fit_degree_thresholds(shard_root, n=6, resolution=32, ops=ops, cache_dir=tmp_path, progress=False)
    assert again.cuts == thresholds.cuts and again.meta["n"] == 6
    ds = RetouchPairs(shard_root, split="val", resolution=32, num_ops=(3, 4), degree_thresholds=thresholds)
    assert ds.degree_source == "psnr"
    sample = ds.generate(0)
    assert sample.degree_source == "psnr" and len(sample.ops) >= 3
    for entry in sample.ops:
        j = ds.types.index(entry["op"])
        assert sample.degrees[j] == entry["degree"] == thresholds.degree(entry["op"], entry["psnr_alone"])
        assert entry["psnr_alone"] > sample.psnr - 1e-6  # one op alone changes less than all of them
    tensors = ds[0]
    assert psnr(to_uint8(tensors["retouched"]), to_uint8(tensors["original"])) == pytest.approx(sample.psnr)


def test_sharp_repeat_lists_sharp_faces_that_many_times(shard_root, monkeypatch):
    import mofrr_core.data.pairs as pairs

    plain = RetouchPairs(shard_root, split="train", resolution=32)
    cut = sorted(f.sharpness for f in plain.faces)[-2]  # the two sharpest faces count as sharp here
    monkeypatch.setattr(pairs, "SHARP", cut)
    ds = RetouchPairs(shard_root, split="train", resolution=32, sharp_repeat=3)
    sharp = {f.key for f in plain.faces if f.sharpness >= cut}
    assert len(sharp) == 2 and len(ds.faces) == len(plain.faces) + 2 * len(sharp)
    assert all(sum(f.key == f2.key for f2 in ds.faces) == (3 if f.key in sharp else 1) for f in plain.faces)
    assert [f.key for f in ds.faces if f.key not in sharp] == [f.key for f in plain.faces if f.key not in sharp]
    with pytest.raises(ValueError, match="sharp_repeat: expected a whole number >= 1, got 0"):
        RetouchPairs(shard_root, split="train", sharp_repeat=0)


def test_min_sharpness_filters_faces(shard_root, face_records):
    cut = sorted(r.sharpness for r in face_records if r.key in {f.key for f in
                 RetouchPairs(shard_root, split="train", resolution=32).faces})[2]
    ds = RetouchPairs(shard_root, split="train", resolution=32, min_sharpness=cut)
    assert len(ds.faces) == 2 and all(f.sharpness >= cut for f in ds.faces)
    with pytest.raises(ValueError, match="no faces in split 'train' with sharpness"):
        RetouchPairs(shard_root, split="train", min_sharpness=1e9)
    with pytest.raises(ValueError, match="unknown retouching op.*'blush'"):
        RetouchPairs(shard_root, ops=["blush"])


def test_default_types_follow_the_engine():
    from mofrr_core.data.pairs import DEFAULT_TYPES
    from mofrr_core.retouch.engine import TYPES

    assert DEFAULT_TYPES == TYPES


def test_training_cache_larger_than_the_split_retouches_faces_again(shard_root):
    from mofrr_core.train.config import make_config
    from mofrr_core.train.stages import build_dataset

    config = make_config("tiny", stage="router", data={"type": "RetouchPairs"}, data_root=str(shard_root),
                         resolution=32, seed=3)
    types = ["white", "smooth", "face", "eye"]
    cached = build_dataset(config, "train", types=types, ops=None, num_ops=(1, 1), cache=10)
    assert len(cached) == 2 * 10  # 10 pairs of the 4 train faces (+ mirrors), not capped at 4
    assert len(set(cached.keys)) == 4 and cached.keys[0] == cached.keys[4]
    assert not torch.equal(cached.images["retouched"][0], cached.images["retouched"][4])  # retouched anew


def test_postprocessing_hits_clean_and_retouched_inputs_alike(shard_root):
    """The same post-processing draw for sample i whether it is retouched or not; the target stays the original."""
    config = {"p": 1.0, "jpeg": [60, 80], "resample": [0.5, 0.9], "noise": {"p": 0.5, "sigma": [1.0, 3.0]}}
    clean = RetouchPairs(shard_root, split="test", resolution=None, num_ops=(0, 4), p_clean=1.0, length=6,
                         postprocess=config)
    touched = RetouchPairs(shard_root, split="test", resolution=None, num_ops=(1, 1), length=6, postprocess=config)
    plain = RetouchPairs(shard_root, split="test", resolution=None, num_ops=(1, 1), length=6)
    for i in range(6):
        a, b, c = clean.generate(i), touched.generate(i), plain.generate(i)
        assert a.extra["postprocess"] == b.extra["postprocess"] and a.record()["postprocess"]["jpeg"]["quality"] >= 60
        assert not a.ops and a.psnr < 55 and not np.array_equal(a.retouched, a.original)  # clean, yet compressed
        assert np.array_equal(b.original, c.original) and b.ops == c.ops  # target and edit unchanged
        assert not np.array_equal(b.retouched, c.retouched) and "postprocess" not in c.record()
    assert {"noise" in clean.generate(i).extra["postprocess"] for i in range(6)} == {True, False}
    assert "postprocess=on" in repr(clean) and "postprocess=off" in repr(plain)


def test_realign_warps_input_and_target_alike(shard_root):
    """Whole-photo geometry: the same alignment on both images, untouched pairs included; off by default."""
    config = {"p": 1.0, "photo_scale": [0.7, 1.4]}
    clean = RetouchPairs(shard_root, split="test", resolution=None, num_ops=(0, 4), p_clean=1.0, length=4,
                         realign=config)
    touched = RetouchPairs(shard_root, split="test", resolution=None, num_ops=(1, 1), length=4, realign=config)
    plain = RetouchPairs(shard_root, split="test", resolution=None, num_ops=(1, 1), length=4)
    for i in range(4):
        a, b, c = clean.generate(i), touched.generate(i), plain.generate(i)
        assert a.extra["realign"] == b.extra["realign"] and 0.7 <= a.extra["realign"]["photo_scale"] <= 1.4
        assert np.array_equal(a.retouched, a.original)  # untouched stays identical to its (warped) target
        assert b.original.shape == c.original.shape and not np.array_equal(b.original, c.original)
        assert b.ops == c.ops and "realign" not in c.extra
        # the warp is a similarity about the face: the pair's own difference survives it, roughly
        assert abs(psnr(b.retouched, b.original) - c.psnr) < 6
    off = RetouchPairs(shard_root, split="test", resolution=None, num_ops=(1, 1), length=4,
                       realign={"p": 0.0, "photo_scale": [0.7, 1.4]})
    assert np.array_equal(off.generate(0).retouched, plain.generate(0).retouched)
    assert "realign=on" in repr(touched) and "realign=off" in repr(plain)
    with pytest.raises(ValueError, match="realign.photo_scale"):
        RetouchPairs(shard_root, split="test", num_ops=(1, 1), realign={"photo_scale": [2, 1]})


def test_degree_view_photo_reads_the_label_on_the_realigned_pair(shard_root, tmp_path):
    """``degree_view: photo``: an op's PSNR label is read on the pair as whole-photo mode cuts it, not on the crop."""
    ops = ["smooth", "eye"]
    thresholds = fit_degree_thresholds(shard_root, n=6, resolution=32, ops=ops, cache_dir=tmp_path, progress=False)
    config = {"p": 1.0, "photo_scale": [0.7, 1.4], "alignment": "upright"}
    options = dict(split="val", resolution=32, ops=["smooth"], length=3, degree_thresholds=thresholds, realign=config)
    native, photo = RetouchPairs(shard_root, **options), RetouchPairs(shard_root, degree_view="photo", **options)
    moved = 0
    for i in range(3):
        a, b = native.generate(i), photo.generate(i)
        assert np.array_equal(a.retouched, b.retouched) and a.ops[0]["strength"] == b.ops[0]["strength"]
        assert b.ops[0]["psnr_alone"] == pytest.approx(psnr(b.retouched, b.original), abs=1e-3)  # the input's view
        moved += abs(a.ops[0]["psnr_alone"] - b.ops[0]["psnr_alone"]) > 0.01
        assert b.degrees[b.types.index("smooth")] == thresholds.degree("smooth", b.ops[0]["psnr_alone"])
    assert moved  # the crop's PSNR is not the photo's
    multi = RetouchPairs(shard_root, split="val", resolution=32, ops=ops, length=2, degree_thresholds=thresholds,
                         realign=config, degree_view="photo")
    for i in range(2):
        sample = multi.generate(i)
        assert all(entry["psnr_alone"] > sample.psnr - 1e-6 for entry in sample.ops)  # one op alone changes less
    with pytest.raises(ValueError, match="degree_view"):
        RetouchPairs(shard_root, split="val", ops=["smooth"], degree_view="photo")  # no realign to read it in


def test_beside_adds_other_retouchings_that_the_target_keeps(shard_root):
    """``beside``: fixed ops get other types beside them, and the target is the original with only those."""
    options = dict(split="val", resolution=None, ops=["smooth"], length=3)
    plain, beside = RetouchPairs(shard_root, **options), RetouchPairs(shard_root, beside=(1, 2), **options)
    for i in range(3):
        a, b = plain.generate(i), beside.generate(i)
        kept = b.extra["beside"]
        assert 1 <= len(kept) <= 2 and "smooth" not in kept and "beside" not in a.extra
        assert sorted(entry["op"] for entry in b.ops) == sorted(["smooth", *kept])
        assert all(b.labels[b.types.index(op)] == 1 for op in ["smooth", *kept])
        original = next(face for face in beside.faces if face.key == b.key).image()
        assert not np.array_equal(b.original, original)  # the target carries the kept retouchings
        assert psnr(b.retouched, b.original) > psnr(b.retouched, original)  # the input is nearer to it
        assert np.array_equal(a.original, original)  # off: the target is the original
    drawn = RetouchPairs(shard_root, split="val", resolution=None, num_ops=(1, 2), length=2, beside=(1, 2))
    assert all("beside" not in drawn.generate(i).extra for i in range(2))  # drawn ops: unaffected
    with pytest.raises(ValueError, match="beside"):
        RetouchPairs(shard_root, split="val", ops=["smooth"], beside=(2, 1))


def test_realign_upright_cuts_the_box_whole_photo_mode_cuts(shard_root):
    """``alignment: upright``: the pair is the upright box of the (rescaled) photo, as ``router_crop: own`` cuts it."""
    from mofrr_core.faces import align_face, points5_from_landmarks, upright_alignment

    config = {"p": 1.0, "photo_scale": [1.0, 1.0], "alignment": "upright"}
    pairs = RetouchPairs(shard_root, split="test", resolution=None, num_ops=(1, 1), length=3, realign=config)
    faces = {face.key: face for face in pairs.faces}
    for i in range(3):
        sample = pairs.generate(i)
        face = faces[sample.key]
        image = face.image()
        expected = align_face(image, upright_alignment(points5_from_landmarks(face.landmarks), image.shape[0]),
                              image.shape[0])
        assert np.array_equal(sample.original, expected) and not np.array_equal(sample.original, image)
    similarity = RetouchPairs(shard_root, split="test", resolution=None, num_ops=(1, 1), length=1,
                              realign={**config, "alignment": "similarity"})
    assert not np.array_equal(similarity.generate(0).original, pairs.generate(0).original)
    with pytest.raises(ValueError, match="realign.alignment: expected similarity or upright, got 'affine'"):
        RetouchPairs(shard_root, split="test", num_ops=(1, 1), realign={**config, "alignment": "affine"})


def test_realign_rescale_p_keeps_some_photos_at_their_own_size(shard_root):
    """``rescale_p``: that share is rescaled before the cut; the others are cut at the size they were retouched at
    (the cut is their only resampling); the draws for scale and order stay those of the default."""
    from mofrr_core.data.realign import resolve_realign

    base = {"p": 1.0, "photo_scale": [0.7, 1.4], "alignment": "upright"}
    kept = RetouchPairs(shard_root, split="test", resolution=None, num_ops=(1, 1), length=8,
                        realign={**base, "rescale_p": 0.5})
    always = RetouchPairs(shard_root, split="test", resolution=None, num_ops=(1, 1), length=8, realign=base)
    never = RetouchPairs(shard_root, split="test", resolution=None, num_ops=(1, 1), length=8,
                         realign={**base, "rescale_p": 0.0})
    scales = []
    for i in range(8):
        k, a, n = kept.generate(i), always.generate(i), never.generate(i)
        assert n.extra["realign"]["photo_scale"] == 1.0 and a.extra["realign"]["photo_scale"] != 1.0
        scale = k.extra["realign"]["photo_scale"]
        scales.append(scale)
        same = a if scale != 1.0 else n
        assert np.array_equal(k.retouched, same.retouched) and np.array_equal(k.original, same.original)
    assert 1.0 in scales and any(s != 1.0 for s in scales)
    assert resolve_realign("photo-kept")["rescale_p"] == 0.5 and resolve_realign("photo-upright")["rescale_p"] == 1.0
    with pytest.raises(ValueError, match="realign.rescale_p"):
        resolve_realign({**base, "rescale_p": 1.5})


def test_realign_native_cuts_the_photos_own_pixels(shard_root):
    """``crop: native`` (preset photo-native): the pair is the photo's own pixels where the face allows it, as
    ``router_crop: native`` reads them, the same box for input and target; the draws stay those of photo-kept."""
    from mofrr_core.data.realign import resolve_realign
    from mofrr_core.faces import points5_from_landmarks, upright_alignment
    from mofrr_core.router_view import native_crop

    config = {"p": 1.0, "photo_scale": [1.0, 1.0], "alignment": "upright"}
    native = RetouchPairs(shard_root, split="test", resolution=None, num_ops=(1, 1), length=3,
                          realign={**config, "crop": "native"})
    resized = RetouchPairs(shard_root, split="test", resolution=None, num_ops=(1, 1), length=3, realign=config)
    faces = {face.key: face for face in native.faces}
    for i in range(3):
        sample, other = native.generate(i), resized.generate(i)
        image = faces[sample.key].image()
        matrix = upright_alignment(points5_from_landmarks(faces[sample.key].landmarks), image.shape[0])
        expected = native_crop(image, matrix, image.shape[0])
        assert expected is not None and np.array_equal(sample.original, expected)
        assert sample.extra["realign"]["native"] and not np.array_equal(sample.original, other.original)
        assert sample.key == other.key and sample.labels.tolist() == other.labels.tolist()
    assert resolve_realign("photo-native") == {**resolve_realign("photo-kept-wide"), "crop": "native"}
    with pytest.raises(ValueError, match="realign.crop"):
        resolve_realign({**config, "alignment": "similarity", "crop": "native"})


def test_retouch_size_retouches_larger_and_shrinks_back(shard_root):
    """``retouch_size``: the face is enlarged before the engine and both images shrunk back after it, untouched
    ones alike; the edit follows the face (ops scale with it), the other draws stay those of the default."""
    from mofrr_core.data.realign import resolve_retouch_size

    common = {"split": "test", "resolution": None, "ops": ["face"], "length": 3}
    plain = RetouchPairs(shard_root, **common)
    large = RetouchPairs(shard_root, retouch_size={"p": 1.0, "scale": [2.0, 2.0]}, **common)
    clean = RetouchPairs(shard_root, split="test", resolution=None, p_clean=1.0, length=2,
                         retouch_size={"p": 1.0, "scale": [2.0, 2.0]})
    for i in range(3):
        a, b = plain.generate(i), large.generate(i)
        assert b.extra["retouch_size"] == {"scale": 2.0} and b.retouched.shape == a.retouched.shape
        assert a.ops[0]["api"] == b.ops[0]["api"] and a.ops[0]["strength"] == b.ops[0]["strength"]
        assert not np.array_equal(a.retouched, b.retouched) and abs(a.psnr - b.psnr) < 4
        assert psnr(b.original, a.original) > 35  # the original, enlarged and shrunk back, is nearly itself
    untouched = clean.generate(0)
    assert np.array_equal(untouched.original, untouched.retouched)
    assert "retouch_size=on" in repr(large) and "retouch_size=off" in repr(plain)
    assert resolve_retouch_size("large") == {"p": 0.5, "scale": [1.5, 3.0]}
    with pytest.raises(ValueError, match="retouch_size.scale"):
        resolve_retouch_size({"scale": [0.5, 2.0]})


def test_reframe_for_retouch_moves_the_landmarks_with_the_face():
    """``reframe_for_retouch``: a reflected border and the photo back at its size; the landmarks follow the pixels
    (a blob's centre lands on its moved point); border 0 or p 0 leave it alone."""
    from mofrr_core.data.realign import reframe_for_retouch, resolve_reframe
    from mofrr_core.retouch.landmarks import FaceLandmarks

    points = np.random.default_rng(0).uniform(40, 184, (68, 2)).astype(np.float32)
    image, yy, xx = np.zeros((224, 224, 3), np.uint8), *np.mgrid[0:224, 0:224]
    for x, y in points[:2]:
        image[..., 0] = np.maximum(image[..., 0], 250 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 18.0))
    landmarks = FaceLandmarks(points)
    shown, moved, border = reframe_for_retouch(image, landmarks, np.random.default_rng(0), {"border": [0.25, 0.25]})
    assert border == 0.25 and shown.shape == image.shape
    assert np.allclose(moved.points, (points + 0.5 + 56) * (224 / 336) - 0.5, atol=1e-4)
    for x, y in moved.points[:2]:
        wy, wx = np.mgrid[round(y) - 6:round(y) + 7, round(x) - 6:round(x) + 7]
        weight = shown[wy, wx, 0].astype(np.float64)
        centre = np.array([(weight * wx).sum(), (weight * wy).sum()]) / weight.sum()
        assert np.abs(centre - [x, y]).max() < 0.3
    for config in ({"border": [0.0, 0.0]}, {"p": 0.0, "border": [0.25, 0.25]}, None):
        same, kept, none = reframe_for_retouch(image, landmarks, np.random.default_rng(0), config)
        assert same is image and kept is landmarks and none == 0.0
    assert resolve_reframe("portrait") == {"p": 0.5, "border": [0.05, 0.3]}
    with pytest.raises(ValueError, match="reframe.border"):
        resolve_reframe({"border": [0.2, 1.5]})
    with pytest.raises(ValueError, match="reframe: expected"):
        resolve_reframe({"scale": [1, 2]})


def edit_spread(sample) -> float:
    """Mean distance of the pixels a retouching changed from the photo's centre."""
    ys, xs = np.nonzero(np.abs(sample.retouched.astype(int) - sample.original.astype(int)).max(axis=2) > 3)
    assert len(xs) > 50
    return float(np.hypot(xs - 111.5, ys - 111.5).mean())


def test_reframe_retouches_the_smaller_face(shard_root):
    """``reframe``: the target is the reframed photo, the edit lands on the (smaller) face, untouched faces are
    reframed alike, and the other draws stay those of the default."""
    common = {"split": "test", "resolution": None, "ops": ["face"], "length": 3}
    plain = RetouchPairs(shard_root, **common)
    framed = RetouchPairs(shard_root, reframe={"p": 1.0, "border": [0.2, 0.2]}, **common)
    for i in range(3):
        a, b = plain.generate(i), framed.generate(i)
        assert b.extra["reframe"] == {"border": 0.2} and b.original.shape == a.original.shape
        assert a.ops[0]["api"] == b.ops[0]["api"] and a.ops[0]["strength"] == b.ops[0]["strength"]
        assert edit_spread(b) < 0.9 * edit_spread(a)  # the face is 1 / 1.4 times as large, its edit closer in
    clean = RetouchPairs(shard_root, split="test", resolution=None, p_clean=1.0, length=2,
                         reframe={"p": 1.0, "border": [0.2, 0.2]}).generate(0)
    assert np.array_equal(clean.original, clean.retouched) and clean.extra["reframe"] == {"border": 0.2}
    assert "reframe=on" in repr(framed) and "reframe=off" in repr(plain)


def test_reframed_photos_saved_as_jpeg_are_cut_natively_for_their_grid(shard_root):
    """``reframe: {jpeg: ...}`` saves the reframed photo as a JPEG before the retouching (border draws unchanged, a
    quantization lattice); ``realign: photo-native-grid`` then cuts its smaller face from the photo's own pixels, as
    ``grid_native`` reads it (record view ``native-grid``), and a reframed photo without the JPEG resized."""
    from mofrr_core.data.realign import reframe_for_retouch, resolve_reframe
    from mofrr_core.jpeg_grid import SAVED_LATTICE_MIN, jpeg_lattice
    from mofrr_core.retouch.landmarks import FaceLandmarks

    common = {"split": "test", "resolution": None, "ops": ["eye"], "length": 4, "realign": "photo-native-grid"}
    saved = RetouchPairs(shard_root, reframe={"p": 1.0, "border": [0.2, 0.2], "jpeg": [85, 85]}, **common)
    framed = RetouchPairs(shard_root, reframe={"p": 1.0, "border": [0.2, 0.2]}, **common)
    views = []
    for i in range(4):
        a, b = saved.generate(i), framed.generate(i)
        views.append(a.extra["realign"].get("view"))  # decided on the retouched photo's cut, as in mofrr restore
        assert (views[-1] == "native-grid") == (jpeg_lattice(a.retouched) >= SAVED_LATTICE_MIN)
        assert not b.extra["realign"].get("native") and jpeg_lattice(b.original) < SAVED_LATTICE_MIN
        assert a.ops[0]["api"] == b.ops[0]["api"] and a.ops[0]["strength"] == b.ops[0]["strength"]
    assert views.count("native-grid") >= 3
    face = saved.faces[0]
    plain = reframe_for_retouch(face.image(), FaceLandmarks(face.landmarks), np.random.default_rng(5),
                                {"border": [0.1, 0.3]})
    jpeg = reframe_for_retouch(face.image(), FaceLandmarks(face.landmarks), np.random.default_rng(5),
                               {"border": [0.1, 0.3], "jpeg": [70, 95]})
    assert plain[2] == jpeg[2] and np.allclose(plain[1].points, jpeg[1].points)
    assert 30 < psnr(jpeg[0], plain[0]) < 60 and jpeg_lattice(jpeg[0]) >= SAVED_LATTICE_MIN > jpeg_lattice(plain[0])
    assert resolve_reframe("portrait-jpeg") == {"p": 1.0, "border": [0.05, 0.3], "jpeg": [70, 95]}
    with pytest.raises(ValueError, match="reframe.jpeg"):
        resolve_reframe({"border": [0.1, 0.2], "jpeg": [50, 120]})
