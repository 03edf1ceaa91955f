import numpy as np
import pytest
from PIL import Image

from mofrr_core.data.folders import LayoutError, PairedFolder, open_dataset, parse_type_folder
from mofrr_core.data.pairs import RetouchPairs
from mofrr_core.io import ImageLoadError


def png(path, value, size=32):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def test_authors_layout_loads_types_and_degrees(tmp_path):
    png(tmp_path / "ori" / "00001.png", 1)
    png(tmp_path / "ori" / "00002.png", 2)
    png(tmp_path / "white" / "3" / "00001.png", 3)
    png(tmp_path / "Eye_Enlarging" / "5" / "00002.png", 4)
    png(tmp_path / "white_eye" / "4_2" / "00002.png", 5)
    png(tmp_path / "smooth+face" / "1" / "00001.png", 6)
    ds = PairedFolder(tmp_path, resolution=16)
    assert ds.layout == "authors" and len(ds) == 4 and ds.degree_source == "folders"
    by = {(tuple(s["degrees"].tolist()), s["key"]): s for s in (ds[i] for i in range(4))}
    assert set(by) == {((3, 0, 0, 0), "00001"), ((0, 0, 0, 5), "00002"), ((4, 0, 0, 2), "00002"),
                       ((0, 1, 1, 0), "00001")}
    sample = by[((4, 0, 0, 2), "00002")]
    assert sample["labels"].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert sample["retouched"].shape == (3, 16, 16)
    original = np.asarray(Image.open(tmp_path / "ori" / "00002.png").resize((16, 16), Image.BOX))
    restored = ((sample["original"].permute(1, 2, 0) + 1) * 127.5).round().numpy()
    assert np.abs(restored - original).mean() < 3  # area resize of the right original
    assert len(PairedFolder(tmp_path, split="train")) + len(PairedFolder(tmp_path, split="val")) + \
        len(PairedFolder(tmp_path, split="test")) == 4


def test_type_folder_names():
    assert parse_type_folder("face_lifting") == ["face"]
    assert parse_type_folder("white_face_lifting") == ["white", "face"]
    assert parse_type_folder("smoothing-eye") == ["smooth", "eye"]
    with pytest.raises(KeyError, match="blush"):
        parse_type_folder("white_blush")


def test_authors_layout_errors_name_the_file(tmp_path):
    png(tmp_path / "ori" / "00001.png", 1)
    png(tmp_path / "white" / "2" / "00009.png", 2)
    with pytest.raises(LayoutError, match=r"white/2/00009.png: no original"):
        PairedFolder(tmp_path)
    (tmp_path / "white" / "2" / "00009.png").unlink()
    png(tmp_path / "blush" / "1" / "00001.png", 3)
    with pytest.raises(LayoutError, match=r"blush: unknown retouching type folder"):
        PairedFolder(tmp_path)
    (tmp_path / "blush" / "1" / "00001.png").rename(tmp_path / "white" / "7.png")
    (tmp_path / "blush" / "1").rmdir()
    (tmp_path / "blush").rmdir()
    with pytest.raises(LayoutError, match=r"white/7.png: images must sit in degree sub-folders"):
        PairedFolder(tmp_path)


def test_paired_layout_and_errors(tmp_path):
    png(tmp_path / "original" / "a.png", 1)
    png(tmp_path / "retouched" / "a.png", 2)
    png(tmp_path / "original" / "b.png", 3)
    png(tmp_path / "retouched" / "b.png", 4)
    ds = open_dataset(tmp_path, resolution=None)
    assert isinstance(ds, PairedFolder) and ds.layout == "paired" and not ds.has_labels
    sample = ds[1]
    assert sample["key"] == "b" and sample["original"].shape == (3, 32, 32) and sample["labels"].sum() == 0
    expected = np.asarray(Image.open(tmp_path / "retouched" / "b.png")).astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(sample["retouched"].permute(1, 2, 0).numpy(), expected, atol=1e-6)
    png(tmp_path / "retouched" / "c.png", 5)
    with pytest.raises(LayoutError, match=r"retouched/c.png: no original"):
        PairedFolder(tmp_path)
    (tmp_path / "retouched" / "c.png").unlink()
    (tmp_path / "retouched" / "b.png").write_bytes(b"\x89PNG broken")
    ds = PairedFolder(tmp_path)
    with pytest.raises(ImageLoadError, match=r"retouched/b.png: not a readable image"):
        ds[1]
    with pytest.raises(ImageLoadError, match=r"b.png"):
        ds.verify()
    png(tmp_path / "retouched" / "b.png", 4, size=40)
    with pytest.raises(ImageLoadError, match=r"retouched/b.png: size 40x40 differs"):
        PairedFolder(tmp_path, resolution=None)[1]


def test_open_dataset_dispatch(shard_root, tmp_path):
    ds = open_dataset(shard_root, split="val", resolution=32)
    assert isinstance(ds, RetouchPairs) and ds.split == "val" and len(ds) == 2
    with pytest.raises(LayoutError, match="no manifest.json"):
        open_dataset(tmp_path)
