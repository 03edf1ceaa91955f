"""Bad, odd and hostile input files: a correct output or one clear line naming the file, never a traceback."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mofrr_core.io import MAX_PIXELS, MIN_SIDE, ImageLoadError, load_image


def png_bytes(array: np.ndarray, **kw) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **kw)
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, **kw)
    return buffer.getvalue()


def palette_png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(buffer, format="PNG")
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression-bomb shaped file)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def bad_corpus(face: np.ndarray) -> dict[str, bytes]:
    """File name -> bytes of files that must be refused."""
    good_png, good_jpg = png_bytes(face), jpeg_bytes(Image.fromarray(face))
    rng = np.random.default_rng(0)
    corrupt = bytearray(good_png)
    corrupt[len(corrupt) // 2:len(corrupt) // 2 + 40] = rng.integers(0, 256, 40, dtype=np.uint8).tobytes()
    return {
        "empty.png": b"",
        "blank.jpg": b"",
        "notes.jpg": b"these are my holiday notes, not a photo\n",
        "noise.png": rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "cut.png": good_png[: len(good_png) // 2],
        "half.jpg": good_jpg[: len(good_jpg) // 2],
        "header.jpg": good_jpg[:20],
        "scrambled.png": bytes(corrupt),
        "pdf.png": b"%PDF-1.4\n1 0 obj << >> endobj\n",
        "speck.png": png_bytes(face[:MIN_SIDE - 4, :MIN_SIDE - 4]),
        "bomb.png": png_header_only(30000, 30000),
    }


def good_corpus(face: np.ndarray) -> dict[str, tuple[bytes, tuple[int, int]]]:
    """File name -> (bytes, expected displayed (height, width)) of odd but valid images."""
    gray16 = (face.mean(axis=2) * 257).astype(np.uint16)
    rgba = np.dstack([face, np.full(face.shape[:2], 128, np.uint8)])
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display = rotate 90 degrees clockwise
    tall = face[:, :40]
    return {
        "gray.png": (png_bytes(face[..., 0]), (64, 64)),
        "gray16.png": (png_bytes(gray16), (64, 64)),
        "rgba.png": (png_bytes(rgba), (64, 64)),
        "palette.png": (palette_png(face), (64, 64)),
        "cmyk.jpg": (jpeg_bytes(Image.fromarray(face).convert("CMYK")), (64, 64)),
        "exif6.jpg": (jpeg_bytes(Image.fromarray(np.rot90(tall, k=1)), exif=exif), (64, 40)),
        "small.png": (png_bytes(face[:20, :24]), (20, 24)),
    }


def write_corpus(folder: Path, corpus: dict) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, value in corpus.items():
        (folder / name).write_bytes(value[0] if isinstance(value, tuple) else value)
        paths.append(folder / name)
    return paths


def test_every_bad_file_is_a_clear_image_load_error(tmp_path, astronaut_face):
    for path in write_corpus(tmp_path, bad_corpus(astronaut_face)):
        with pytest.raises(ImageLoadError) as info:
            load_image(path)
        message = str(info.value)
        assert str(path) in message and "\n" not in message, message
    assert "too large" in _message(load_image, tmp_path / "bomb.png") and f"{MAX_PIXELS / 1e6:.0f}" in _message(
        load_image, tmp_path / "bomb.png")
    assert "too small" in _message(load_image, tmp_path / "speck.png")
    assert "empty" in _message(load_image, tmp_path / "empty.png")
    assert "no such file" in _message(load_image, tmp_path / "missing.png")
    assert "folder" in _message(load_image, tmp_path)


def _message(fn, *args) -> str:
    with pytest.raises(ImageLoadError) as info:
        fn(*args)
    return str(info.value)


def test_odd_valid_images_load_as_rgb(tmp_path, astronaut_face):
    corpus = good_corpus(astronaut_face)
    write_corpus(tmp_path, corpus)
    for name, (_, shape) in corpus.items():
        array = load_image(tmp_path / name)
        assert array.dtype == np.uint8 and array.shape == (*shape, 3), name
        assert array.flags.writeable
    gray = load_image(tmp_path / "gray.png")
    assert np.array_equal(gray[..., 0], astronaut_face[..., 0]) and np.array_equal(gray[..., 0], gray[..., 2])
    expected16 = np.round((astronaut_face.mean(axis=2) * 257).astype(np.uint16) / 257).astype(int)
    assert np.abs(load_image(tmp_path / "gray16.png")[..., 0].astype(int) - expected16).max() <= 1
    rgba = load_image(tmp_path / "rgba.png").astype(int)  # half-transparent over white
    assert np.abs(rgba - (astronaut_face.astype(int) * 128 + 255 * 127) / 255).max() <= 1.5
    assert np.abs(load_image(tmp_path / "cmyk.jpg").astype(int) - astronaut_face).mean() < 3
    palette = load_image(tmp_path / "palette.png")
    assert np.array_equal(palette, np.asarray(Image.open(tmp_path / "palette.png").convert("RGB")))
    assert np.abs(palette.astype(int) - astronaut_face).mean() < 6  # 64 colours


def test_exif_orientation_is_honoured(tmp_path, astronaut_face):
    tall = astronaut_face[:, :40]
    write_corpus(tmp_path, good_corpus(astronaut_face))
    loaded = load_image(tmp_path / "exif6.jpg").astype(int)
    assert loaded.shape == tall.shape
    assert np.abs(loaded - tall).mean() < 4  # JPEG loss only
    assert np.abs(np.rot90(loaded, k=1)[:40, :40] - tall[:40, :40]).mean() > 20  # not the stored orientation


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["png", "jpg"]), cut=st.floats(0.0, 1.0),
       flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), max_size=6))
def test_mutated_files_never_escape_as_other_errors(tmp_path, astronaut_face, kind, cut, flips):
    data = bytearray(png_bytes(astronaut_face) if kind == "png" else jpeg_bytes(Image.fromarray(astronaut_face)))
    data = data[: max(1, int(len(data) * cut))] if cut < 0.98 else data
    for where, value in flips:
        data[min(len(data) - 1, int(where * len(data)))] ^= value
    path = tmp_path / f"mutant.{kind}"
    path.write_bytes(bytes(data))
    try:
        array = load_image(path)
    except ImageLoadError as error:
        assert str(path) in str(error)
    else:  # a decoder may tolerate some damage: then the result must be a proper image
        assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3


def test_cli_batch_with_bad_and_odd_files(tmp_path, astronaut_face, cli):
    folder = tmp_path / "in"
    bad = write_corpus(folder, bad_corpus(astronaut_face))
    good = good_corpus(astronaut_face)
    write_corpus(folder, good)
    out = tmp_path / "out"
    result = cli(folder, "-o", out, "--aligned")
    assert result.code == 1
    assert "Traceback" not in result.err and "Traceback" not in result.out
    lines = result.err.splitlines()
    for path in bad:
        naming = [line for line in lines if path.name in line]
        assert len(naming) == 1 and naming[0].startswith("error: ") and str(path) in naming[0], (path, naming)
    written = {p.name for p in out.iterdir()}
    assert written == {f"{Path(name).stem}.png" for name in good}  # nothing for bad inputs, no partials
    for name, (_, shape) in good.items():
        assert np.asarray(Image.open(out / f"{Path(name).stem}.png")).shape == (*shape, 3)
    assert f"{len(good)} image(s)" in result.out and f"{len(bad)} failed" in result.out


def test_cli_single_bad_file_writes_nothing(tmp_path, cli):
    bad = tmp_path / "holiday.jpg"
    bad.write_bytes(b"")
    out = tmp_path / "out"
    result = cli(bad, "-o", out, "--aligned")
    assert result.code == 1 and "holiday.jpg" in result.err and "empty" in result.err
    assert "Traceback" not in result.err
    assert not out.exists() or not any(out.iterdir())


def test_cli_non_image_in_whole_photo_mode_is_named(tmp_path, cli, monkeypatch):
    from tests.robustness.helpers import FakeDetector, install_fake_provider

    install_fake_provider(monkeypatch, FakeDetector({}))
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"GIF89a nope")
    result = cli(bad, "-o", tmp_path / "out")
    assert result.code == 1 and str(bad) in result.err and "Traceback" not in result.err
