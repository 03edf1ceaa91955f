"""Whole-photo mode: detect -> align -> restore -> paste back, with a fake landmark provider."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image

from mofrr_core.faces import estimate_alignment, full_paste_mask, points5_from_landmarks
from mofrr_core.pipeline import Pipeline
from mofrr_core.restore import NoFaceError, restore_photo
from tests.robustness.helpers import FakeDetector, astronaut_with_landmarks, install_fake_provider, two_face_photo

RESOLUTION = 32  # make_tiny_pipeline


def union_mask(faces, shape) -> np.ndarray:
    masks = [full_paste_mask(estimate_alignment(points5_from_landmarks(f), RESOLUTION), RESOLUTION, shape)
             for f in faces]
    return np.maximum.reduce(masks), masks


@pytest.fixture(scope="module")
def pipeline(pipeline_dir):
    return Pipeline.from_pretrained(pipeline_dir)


class Recording:
    """Wraps a pipeline and records the size of every image sent to the networks."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline, self.shapes = pipeline, []

    def __getattr__(self, name):
        return getattr(self.pipeline, name)

    def __call__(self, images, **kwargs):
        self.shapes += [np.asarray(image).shape for image in images]
        return self.pipeline(images, **kwargs)


def test_cli_restores_both_faces_and_nothing_else(tmp_path, cli, monkeypatch):
    photo, faces = two_face_photo()
    install_fake_provider(monkeypatch, FakeDetector({photo.shape[:2]: faces}))
    Image.fromarray(photo).save(tmp_path / "group.png")
    result = cli(tmp_path / "group.png", "-o", tmp_path / "out", "--report", tmp_path / "report", "--seed", "3")
    assert result.code == 0, result.err
    assert "2 faces" in result.out
    restored = np.asarray(Image.open(tmp_path / "out" / "group.png")).astype(int)
    assert restored.shape == photo.shape
    everywhere, masks = union_mask(faces, photo.shape)
    change = np.abs(restored - photo).max(axis=2)
    assert change[everywhere == 0].max() == 0  # outside both face masks: bit-identical
    for mask in masks:  # each face was restored (the tiny random networks change every crop)
        assert change[mask > 0.5].mean() > 0.5
    report = json.loads((tmp_path / "report" / "group.json").read_text())
    assert report["mode"] == "whole-photo" and len(report["faces"]) == 2
    big, small = report["faces"]
    assert (big["box"][2] - big["box"][0]) > (small["box"][2] - small["box"][0])  # largest face first
    np.testing.assert_allclose(big["points5"], points5_from_landmarks(faces[0]), atol=0.06)


def test_max_faces_keeps_the_largest(pipeline):
    photo, faces = two_face_photo()
    result = restore_photo(pipeline, photo, aligned=False, detector=FakeDetector({photo.shape[:2]: faces[::-1]}),
                           max_faces=1)
    _, (big_mask, small_mask) = union_mask(faces, photo.shape)
    change = np.abs(result.image.astype(int) - photo).max(axis=2)
    assert len(result.faces) == 1
    assert change[big_mask > 0.5].mean() > 0.5
    assert change[(small_mask > 0) & (big_mask == 0)].max() == 0


def test_no_face_is_a_clear_failure(tmp_path, cli, monkeypatch):
    install_fake_provider(monkeypatch, FakeDetector({}))
    Image.fromarray(np.full((96, 128, 3), 120, np.uint8)).save(tmp_path / "wall.png")
    result = cli(tmp_path / "wall.png", "-o", tmp_path / "out")
    assert result.code == 1
    assert "wall.png" in result.err and "no face found" in result.err and "--aligned" in result.err
    assert "Traceback" not in result.err and not (tmp_path / "out" / "wall.png").exists()


def test_unusable_detections_are_skipped(pipeline):
    image, landmarks = astronaut_with_landmarks()
    garbage = [np.full((478, 2), np.nan, np.float32), landmarks + 10_000, np.zeros((478, 2), np.float32)]
    with pytest.raises(NoFaceError, match="3 face"):
        restore_photo(pipeline, image, aligned=False, detector=lambda _: garbage)
    result = restore_photo(pipeline, image, aligned=False, detector=lambda _: garbage + [landmarks])
    assert len(result.faces) == 1


def test_without_a_landmark_provider_it_says_how_to_get_one(tmp_path, cli, monkeypatch, astronaut_face):
    from mofrr_core.plugins import get_state
    from mofrr_core.spec import LandmarkProviderSpec

    def not_installed():
        raise ImportError("No module named 'mediapipe'")

    monkeypatch.setattr(get_state(), "landmark_providers",
                        {"mediapipe": LandmarkProviderSpec(name="mediapipe", factory=not_installed)})
    Image.fromarray(astronaut_face).save(tmp_path / "a.png")
    result = cli(tmp_path / "a.png", "-o", tmp_path / "out")
    assert result.code == 2
    assert "pip install 'mofrr[landmarks]'" in result.err and "--aligned" in result.err and "mediapipe" in result.err
    assert not (tmp_path / "out").exists()
    assert cli(tmp_path / "a.png", "-o", tmp_path / "out", "--aligned").code == 0


def test_large_photo_only_sends_crops_through_the_networks(pipeline):
    image, landmarks = astronaut_with_landmarks()
    photo = np.full((3000, 4000, 3), 90, np.uint8)
    photo[1000:1512, 2000:2512] = image
    face = landmarks + [2000, 1000]
    recording = Recording(pipeline)
    tracemalloc.start()
    try:
        result = restore_photo(recording, photo, aligned=False, detector=lambda _: [face])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert recording.shapes == [(RESOLUTION, RESOLUTION, 3)]
    assert result.image.shape == photo.shape
    assert peak < 1.5 * photo.nbytes  # the output copy plus crop-sized buffers; a float copy would be 4x
    rows, cols = np.nonzero((result.image != photo).any(axis=2))
    assert rows.size > 1000  # the face changed, and only inside the pasted face area
    assert rows.min() >= 1000 and rows.max() < 1512 and cols.min() >= 2000 and cols.max() < 2512


def test_crop_size_sets_the_side_of_the_aligned_faces(pipeline):
    """``crop_size`` (registry) aligns whole-photo faces at that size; the networks still work at ``resolution``."""
    image, landmarks = astronaut_with_landmarks()
    recording = Recording(pipeline)
    pipeline.crop_size = 2 * RESOLUTION
    try:
        result = restore_photo(recording, image, aligned=False, detector=lambda _: [landmarks])
    finally:
        pipeline.crop_size = None
    assert pipeline.face_crop_size == RESOLUTION
    assert recording.shapes == [(2 * RESOLUTION, 2 * RESOLUTION, 3)]
    reference = restore_photo(pipeline, image, aligned=False, detector=lambda _: [landmarks])
    # the same face area whatever the crop size (the feathered edge may move by a pixel)
    assert np.abs(np.subtract(result.faces[0]["box"], reference.faces[0]["box"])).max() <= 1
    assert not np.array_equal(result.image, reference.image)


def test_router_crop_own_gives_the_router_its_own_face_crop(pipeline):
    """``router_crop: own``: the router reads the face cut from the photo at its own size, not the experts' crop
    resized; ``shared`` (the default) resizes the experts' crop."""
    from mofrr_core.faces import align_face, face_alignment
    from mofrr_core.utils.image import resize, to_tensor_list

    image, landmarks = astronaut_with_landmarks()
    points5 = points5_from_landmarks(landmarks)

    def routed(face: np.ndarray) -> list[float]:  # the router on a face brought to its size
        x = resize(to_tensor_list([face])[0][None], (pipeline.router_size,) * 2).clamp(-1, 1)
        return [round(p, 4) for p in pipeline.route(x)[0].tolist()]

    pipeline.crop_size = 2 * RESOLUTION
    try:
        results = {}
        for mode in ("own", "shared"):
            pipeline.router_crop = mode
            results[mode] = restore_photo(pipeline, image, aligned=False, detector=lambda _: [landmarks])
    finally:
        pipeline.crop_size, pipeline.router_crop = None, "shared"
    own = align_face(image, face_alignment(points5, RESOLUTION, pipeline.alignment), RESOLUTION)
    assert list(results["own"].faces[0]["probabilities"].values()) == pytest.approx(routed(own), abs=2e-4)
    crop = align_face(image, face_alignment(points5, 2 * RESOLUTION, pipeline.alignment), 2 * RESOLUTION)
    assert list(results["shared"].faces[0]["probabilities"].values()) == pytest.approx(routed(crop), abs=2e-4)
    assert results["own"].faces[0]["probabilities"] != results["shared"].faces[0]["probabilities"]
    with pytest.raises(ValueError, match="router_images: expected 1 entries"):
        pipeline([own], router_images=[own, own])


def test_router_crop_native_reads_the_photos_pixels_where_the_face_fits(pipeline):
    """``router_crop: native``: the router reads the photo's own pixels (:func:`native_crop`) when the face's box
    is about the router's size, and the ``own`` crop when it is not (a face much larger than the router's size)."""
    import cv2

    from mofrr_core.faces import align_face, crop_box, face_alignment
    from mofrr_core.restore import usable_faces
    from mofrr_core.router_view import native_crop, router_crops

    image, landmarks = astronaut_with_landmarks()
    size = pipeline.router_size
    factor = size / crop_box(face_alignment(points5_from_landmarks(landmarks), size, "upright"), size)[2]
    fits = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)  # the face box about size
    small = [(landmarks + 0.5) * factor - 0.5]
    pipeline.crop_size, pipeline.router_crop, alignment = 2 * RESOLUTION, "native", pipeline.alignment
    pipeline.alignment = "upright"  # native crops are boxes of the upright alignment
    try:
        for photo, found in ((fits, small), (image, [landmarks])):
            faces = usable_faces(found, photo.shape, pipeline.face_crop_size, pipeline.alignment)
            matrix = face_alignment(faces[0][1], size, pipeline.alignment)
            native = native_crop(photo, matrix, size)
            assert (native is None) == (photo is image)
            expected = align_face(photo, matrix, size) if native is None else native
            read = router_crops(pipeline, photo, faces)
            assert np.array_equal(read.images[0], expected)
            assert read.views == ["resized" if native is None else "native"]
        result = restore_photo(pipeline, fits, aligned=False, detector=lambda _: small)
        assert result.faces[0]["router_view"] == "native"
        # a router calibrated per view: the face read resized is judged, and reported, with that view's thresholds
        pipeline.router.register_to_config(view_gate_offsets={"resized": {"face": -2.0}})
        native, resized = (restore_photo(pipeline, photo, aligned=False, detector=lambda _, f=found: f).faces[0]
                           for photo, found in ((fits, small), (image, [landmarks])))
        assert "gate_thresholds" not in native and resized["router_view"] == "resized"
        assert resized["gate_thresholds"] == pytest.approx(pipeline.view_gate_thresholds("resized"), abs=1e-4)
        assert resized["gate_thresholds"]["face"] > pipeline.gate_thresholds["face"]
    finally:
        pipeline.crop_size, pipeline.router_crop, pipeline.alignment = None, "shared", alignment
        pipeline.router.register_to_config(view_gate_offsets=None)


def test_undo_enlargement_reads_an_enlarged_photo_at_its_saved_size(pipeline, tmp_path, monkeypatch):
    """``undo_enlargement``: a photo enlarged 1.5 times after its JPEG save (its face now too large for a native view;
    the factor from ``jpeg_grid.saved_size``, tested on its own) is read by the router shrunk back to its saved
    size, natively, where the face fits again; the report gives the factor; the experts still restore the photo as
    it is; saved with the pipeline."""
    import cv2

    import mofrr_core.router_view as router_view
    from mofrr_core.faces import crop_box, face_alignment
    from mofrr_core.jpeg_grid import SavedSize
    from mofrr_core.restore import usable_faces
    from mofrr_core.router_view import native_crop, router_crops

    image, landmarks = astronaut_with_landmarks()
    size = pipeline.router_size
    factor = size / crop_box(face_alignment(points5_from_landmarks(landmarks), size, "upright"), size)[2]
    fits = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)  # the face box about size
    photo = cv2.resize(fits, None, fx=1.5, fy=1.5)
    found = [((landmarks + 0.5) * factor - 0.5 + 0.5) * 1.5 - 0.5]
    saved = SavedSize(photo.shape[1] / fits.shape[1], fits.shape[1], fits.shape[0], (0, 0), 1.3, 5.0)
    monkeypatch.setattr(router_view, "saved_size", lambda image: saved if image.shape == photo.shape else None)
    keep = pipeline.crop_size, pipeline.router_crop, pipeline.alignment
    pipeline.crop_size, pipeline.router_crop, pipeline.alignment = 2 * RESOLUTION, "native", "upright"
    try:
        faces = usable_faces(found, photo.shape, pipeline.face_crop_size, pipeline.alignment)
        assert router_crops(pipeline, photo, faces).views == ["resized"]
        pipeline.undo_enlargement = True
        read = router_crops(pipeline, photo, faces)
        matrix = face_alignment(saved.points(faces[0][1]), size, pipeline.alignment)
        assert read.views == ["native"] and read.saved_scale == saved.scale
        assert np.array_equal(read.images[0], native_crop(saved.shrink(photo), matrix, size))
        assert np.abs(saved.points(faces[0][1]) - points5_from_landmarks(found[0] / 1.5)).max() < 0.5
        result = restore_photo(pipeline, photo, aligned=False, detector=lambda _: found)
        assert result.image.shape == photo.shape  # the experts restore the photo as it is
        assert result.faces[0]["router_view"] == "native" and result.faces[0]["saved_scale"] == round(saved.scale, 4)
        assert "saved_scale" not in restore_photo(pipeline, fits, aligned=False,
                                                  detector=lambda _: [found[0] / 1.5]).faces[0]
        pipeline.save_pretrained(tmp_path / "pipe")
        assert Pipeline.from_pretrained(tmp_path / "pipe").undo_enlargement is True
    finally:
        pipeline.crop_size, pipeline.router_crop, pipeline.alignment = keep
        pipeline.undo_enlargement = False


def test_grid_native_gates_read_a_smaller_face_of_a_jpeg_photo_natively(pipeline, tmp_path, monkeypatch):
    """``grid_native``: a face 0.75 times the router's view in a photo saved as JPEG at its size (the tiny router's
    32 px view holds too few blocks to tell: ``jpeg_lattice`` stands in, tested on its own) is read resized (view
    ``native-grid``) except by the ``grid_native`` gates, which read the photo's own pixels; the photo not saved so,
    or without ``grid_native``, is read resized by every gate; the report says which gates read natively; saved
    with the pipeline."""
    import cv2

    import mofrr_core.router_view as router_view
    from mofrr_core.faces import align_face, crop_box, face_alignment
    from mofrr_core.pipeline import router_types
    from mofrr_core.restore import usable_faces
    from mofrr_core.retouch.postprocess import jpeg_roundtrip
    from mofrr_core.router_view import native_crop, router_crops

    image, landmarks = astronaut_with_landmarks()
    size, gates = pipeline.router_size, router_types(pipeline.router)[2:]
    factor = 0.75 * size / crop_box(face_alignment(points5_from_landmarks(landmarks), size, "upright"), size)[2]
    small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    saved, found = jpeg_roundtrip(small, 85), [(landmarks + 0.5) * factor - 0.5]
    keep = pipeline.crop_size, pipeline.router_crop, pipeline.alignment
    pipeline.crop_size, pipeline.router_crop, pipeline.alignment = 2 * RESOLUTION, "native", "upright"
    pipeline.grid_native = {"range": (0.6, 0.9), "gates": gates}
    try:
        faces = usable_faces(found, saved.shape, pipeline.face_crop_size, pipeline.alignment)
        matrix = face_alignment(faces[0][1], size, pipeline.alignment)
        monkeypatch.setattr(router_view, "jpeg_lattice", lambda crop: 1.0)  # saved as JPEG at this size
        read = router_crops(pipeline, saved, faces)
        assert read.views == ["native-grid"] and np.array_equal(read.images[0], align_face(saved, matrix, size))
        assert sorted(read.gate_images) == sorted(gates)
        for t in gates:
            assert np.array_equal(read.gate_images[t][0], native_crop(saved, matrix, size, (0.6, 0.9)))
        assert read.face_report(0)["gate_views"] == dict.fromkeys(gates, "native")
        result = restore_photo(pipeline, saved, aligned=False, detector=lambda _: found)
        assert result.faces[0]["router_view"] == "native-grid"
        pipeline.save_pretrained(tmp_path / "pipe")
        loaded = Pipeline.from_pretrained(tmp_path / "pipe").grid_native
        assert list(loaded["range"]) == [0.6, 0.9] and loaded["gates"] == list(gates)
        pipeline.grid_native = None
        assert router_crops(pipeline, saved, faces).views == ["resized"]
        pipeline.grid_native = {"range": (0.6, 0.9), "gates": gates}
        monkeypatch.setattr(router_view, "jpeg_lattice", lambda crop: 0.2)  # not saved at this size
        assert router_crops(pipeline, small, faces).views == ["resized"]
    finally:
        pipeline.crop_size, pipeline.router_crop, pipeline.alignment = keep
        pipeline.grid_native = None


def test_context_gates_read_a_close_up_face_resized(pipeline):
    """``router_context_types``: where the native view is a close-up (the face's box more than ``CLOSE_UP`` times
    the router's size), those gates read the resized crop and the other gates the native view; elsewhere all
    gates read the one view."""
    import cv2

    from mofrr_core.faces import align_face, crop_box, face_alignment
    from mofrr_core.pipeline import router_types
    from mofrr_core.restore import usable_faces
    from mofrr_core.router_view import CLOSE_UP, NATIVE_SCALE_RANGE, router_crops
    from mofrr_core.utils.image import resize, to_tensor_list

    image, landmarks = astronaut_with_landmarks()
    size, context = pipeline.router_size, router_types(pipeline.router)[0]
    ratio = crop_box(face_alignment(points5_from_landmarks(landmarks), size, "upright"), size)[2] / size

    def routed(face: np.ndarray) -> list[float]:  # the router's decision probabilities on a face
        return pipeline.route(resize(to_tensor_list([face])[0][None], (size, size)).clamp(-1, 1))[0].tolist()

    saved = pipeline.crop_size, pipeline.router_crop, pipeline.alignment, pipeline.router_context_types
    pipeline.crop_size, pipeline.router_crop, pipeline.alignment = 2 * RESOLUTION, "native", "upright"
    pipeline.router_context_types = (context,)
    try:
        for target, close_up in ((1.0, False), ((CLOSE_UP + NATIVE_SCALE_RANGE[1]) / 2, True)):
            factor = target / ratio
            photo = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            found = [(landmarks + 0.5) * factor - 0.5]
            faces = usable_faces(found, photo.shape, pipeline.face_crop_size, "upright")
            read = router_crops(pipeline, photo, faces)
            assert read.views == ["native"]
            report = restore_photo(pipeline, photo, aligned=False, detector=lambda _, found=found: found).faces[0]
            assert report["router_view"] == "native"
            assert report.get("gate_views") == ({context: "resized"} if close_up else None)
            if not close_up:
                assert read.gate_images is None
                continue
            resized = align_face(photo, face_alignment(faces[0][1], size, "upright"), size)
            assert list(read.gate_images) == [context] and np.array_equal(read.gate_images[context][0], resized)
            out = pipeline([read.images[0]], active="none", output_type="np", **read.pipeline_kwargs())
            expected = routed(read.images[0])
            expected[0] = routed(resized)[0]
            reported = pipeline.reported_probabilities(torch.tensor([expected]))[0].tolist()
            assert list(out.probabilities[0].values()) == pytest.approx(reported, abs=2e-4)
            assert routed(resized)[0] != pytest.approx(routed(read.images[0])[0], abs=1e-3)
        with pytest.raises(ValueError, match="gate_images\\['nothing'\\]: expected a gate of the router"):
            pipeline([resized], gate_images={"nothing": [resized]})
        with pytest.raises(ValueError, match="router_context_types: the router has no gate for nothing"):
            Pipeline(pipeline.router, pipeline.experts, pipeline.shared, pipeline.combine,
                     router_context_types=["nothing"])
    finally:
        pipeline.crop_size, pipeline.router_crop, pipeline.alignment, pipeline.router_context_types = saved
