import io
import json
import tarfile

import numpy as np
import pytest

from mofrr_core.data.shards import DataRootError, default_data_root, iter_shard, read_shards, resolve_data_root


def test_read_shards_keys_landmarks_and_images(shard_root, face_records):
    records = read_shards(shard_root)
    assert [r.key for r in records] == [r.key for r in face_records]
    first = records[0]
    assert first.landmarks.dtype == np.float32 and first.landmarks.shape == (478, 2)
    # pixel coordinates of a face in the 224 px crop (points may leave the crop at its edges)
    centre, spread = np.median(first.landmarks, axis=0), first.landmarks.std(axis=0)
    assert np.all((centre > 50) & (centre < 174)) and np.all(spread > 15)
    np.testing.assert_array_equal(first.landmarks, face_records[0].landmarks.astype(np.float16).astype(np.float32))
    image = first.image()
    assert image.dtype == np.uint8 and image.shape == (224, 224, 3)
    assert image.std() > 10  # a real photo, not a blank
    assert first.meta["width"] == 224 and "sharpness" in first.meta
    assert first.sharpness == pytest.approx(float(first.meta["sharpness"]))


def test_shared_shard_keys_match_tar_listing():
    from tests.data.conftest import shared_data  # noqa: PLC0415 - skips without the data

    shard = sorted(shared_data().glob("faces-*.tar"))[0]
    with tarfile.open(shard) as tar:
        keys = {name.split(".", 1)[0] for name in tar.getnames()}
    records = list(iter_shard(shard))
    assert {r.key for r in records} == keys
    assert len(records) == len(keys) == 1000


def test_missing_root_names_path_and_env(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("MOFRR_DATA", str(missing))
    with pytest.raises(DataRootError, match="nowhere.*MOFRR_DATA") as info:
        default_data_root()
    assert "--data" in str(info.value)
    with pytest.raises(DataRootError, match="no faces-\\*.tar shards"):
        read_shards(tmp_path)
    monkeypatch.setenv("MOFRR_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    assert resolve_data_root(None) == tmp_path


def test_sample_missing_a_part_is_named(tmp_path):
    shard = tmp_path / "faces-00000.tar"
    with tarfile.open(shard, "w") as tar:
        data = json.dumps({"sharpness": 1.0}).encode()
        info = tarfile.TarInfo("abc_1.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="abc_1.*abc_1.jpg"):
        read_shards(tmp_path)
