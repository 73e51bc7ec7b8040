"""Robust image I/O: every mode and bit depth becomes HxWx3 uint8, bad files one-line errors."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from inpaintlab.data.io import (
    IMAGE_EXTENSIONS,
    ImageLoadError,
    ImageSaveError,
    list_images,
    load_mask,
    load_rgb,
    save_image,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 17, 3), dtype=np.uint8)


def one_line_error(err: pytest.ExceptionInfo, path: Path) -> str:
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"cannot read {path}: ")
    return text


def test_rgb_png_round_trips_exactly(tmp_path: Path) -> None:
    Image.fromarray(RGB).save(tmp_path / "a.png")
    out = load_rgb(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (12, 17, 3)
    np.testing.assert_array_equal(out, RGB)


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red-ish everywhere
    rgba[0, :, 3] = [0, 255, 128]
    rgba[1, :, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_rgb(tmp_path / "a.png")
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])  # transparent -> white
    np.testing.assert_array_equal(out[0, 1], [200, 0, 0])  # opaque -> its colour
    np.testing.assert_allclose(out[0, 2], [228, 127, 127], atol=1)  # half -> blend
    np.testing.assert_array_equal(out[1], [[200, 0, 0]] * 3)


def test_la_and_l_and_1_become_gray_rgb(tmp_path: Path) -> None:
    gray = RGB[..., 0]
    Image.fromarray(gray, "L").save(tmp_path / "l.png")
    np.testing.assert_array_equal(load_rgb(tmp_path / "l.png"), np.repeat(gray[..., None], 3, 2))
    la = np.stack([gray, np.full_like(gray, 255)], axis=2)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(load_rgb(tmp_path / "la.png"), np.repeat(gray[..., None], 3, 2))
    Image.fromarray(gray > 127).save(tmp_path / "bw.png")
    out = load_rgb(tmp_path / "bw.png")
    assert set(np.unique(out)) <= {0, 255} and out.shape == (12, 17, 3)


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    pal = Image.fromarray(RGB).quantize(8)
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_rgb(tmp_path / "p.png"), np.asarray(pal.convert("RGB")))
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pt.gif", transparency=0)
    out = load_rgb(tmp_path / "pt.gif")
    index = np.asarray(Image.open(tmp_path / "pt.gif"))
    assert (index == 0).any()
    np.testing.assert_array_equal(out[index == 0], 255)  # transparent colour -> white


def test_16bit_gray_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32768, 65535], [128, 300, 1000, 65000]], dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), values)
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = load_rgb(tmp_path / "g16.png")
    expected = np.rint(values / 257).astype(np.uint8)
    np.testing.assert_array_equal(out, np.repeat(expected[..., None], 3, 2))


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_rgb_and_rgba_are_read_at_full_depth(tmp_path: Path, ext: str) -> None:
    rgb16 = RNG.integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / f"c{ext}"), rgb16[..., ::-1])  # OpenCV writes BGR
    np.testing.assert_array_equal(
        load_rgb(tmp_path / f"c{ext}"), np.rint(rgb16 / 257).astype(np.uint8)
    )
    rgba16 = np.concatenate([rgb16, np.full((9, 11, 1), 65535, np.uint16)], axis=2)
    rgba16[0, 0, 3] = 0
    cv2.imwrite(str(tmp_path / f"a{ext}"), rgba16[..., [2, 1, 0, 3]])
    out = load_rgb(tmp_path / f"a{ext}")
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[1:], np.rint(rgb16[1:] / 257).astype(np.uint8))


def test_float_tiff(tmp_path: Path) -> None:
    values = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    Image.fromarray(values, "F").save(tmp_path / "f.tif")
    out = load_rgb(tmp_path / "f.tif")
    np.testing.assert_array_equal(out[..., 0], np.rint(values * 255).astype(np.uint8))


def test_cmyk_jpeg(tmp_path: Path) -> None:
    smooth = np.zeros((32, 32, 3), dtype=np.uint8)
    smooth[..., 0], smooth[..., 1], smooth[..., 2] = 200, np.arange(32)[:, None] * 4, 60
    Image.fromarray(smooth).convert("CMYK").save(tmp_path / "c.jpg", quality=98)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    out = load_rgb(tmp_path / "c.jpg")
    assert out.shape == (32, 32, 3)
    assert np.abs(out.astype(int) - smooth).mean() < 4


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    img = Image.fromarray(RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(tmp_path / "r.jpg", exif=exif, quality=100)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "r.jpg")).convert("RGB"))
    out = load_rgb(tmp_path / "r.jpg")
    assert out.shape == ((10, 6, 3) if orientation >= 5 else (6, 10, 3))
    np.testing.assert_array_equal(out, expected)


def test_exif_orientation_applies_to_16bit_fallback(tmp_path: Path) -> None:
    rgb16 = RNG.integers(0, 65536, (4, 7, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "c.png"), rgb16[..., ::-1])
    with Image.open(tmp_path / "c.png") as img:  # add an eXIf chunk by re-encoding the header
        exif = img.getexif()
    exif[0x0112] = 6
    data = (tmp_path / "c.png").read_bytes()
    payload = exif.tobytes()
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + payload) & 0xFFFFFFFF)
    ihdr_end = 8 + 25
    (tmp_path / "c.png").write_bytes(data[:ihdr_end] + chunk + data[ihdr_end:])
    out = load_rgb(tmp_path / "c.png")
    np.testing.assert_array_equal(out, np.rot90(np.rint(rgb16 / 257).astype(np.uint8), -1))


def test_bad_files_raise_one_line_errors(tmp_path: Path) -> None:
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.png").write_bytes(RNG.integers(0, 256, 500, dtype=np.uint8).tobytes())
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not a picture\n")
    (tmp_path / "folder.png").mkdir()
    reasons = {
        "truncated.png": "truncated or corrupt",
        "noise.png": "not an image",
        "empty.png": "empty file",
        "text.jpg": "not an image",
        "missing.png": "no such file",
        "folder.png": "is a directory",
    }
    for name, reason in reasons.items():
        for loader in (load_rgb, load_mask):
            with pytest.raises(ImageLoadError) as err:
                loader(tmp_path / name)
            assert reason in one_line_error(err, tmp_path / name)


def test_load_mask_binary_gray_and_01(tmp_path: Path) -> None:
    mask = np.zeros((5, 6), dtype=np.uint8)
    mask[1:3, 2:5] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    values, was_binary = load_mask(tmp_path / "m.png")
    assert values.dtype == np.float32 and was_binary
    np.testing.assert_array_equal(values, mask / 255)

    Image.fromarray(mask // 255).save(tmp_path / "m01.png")  # numpy 0/1 saved as 8 bit
    values, was_binary = load_mask(tmp_path / "m01.png")
    assert was_binary
    np.testing.assert_array_equal(values, mask / 255)

    soft = np.array([[0, 100, 127, 128, 200, 255]], dtype=np.uint8)
    Image.fromarray(soft).save(tmp_path / "soft.png")
    values, was_binary = load_mask(tmp_path / "soft.png")
    assert not was_binary
    np.testing.assert_array_equal(values, [[0, 0, 0, 1, 1, 1]])
    values, _ = load_mask(tmp_path / "soft.png", threshold=0.3)
    np.testing.assert_array_equal(values, [[0, 1, 1, 1, 1, 1]])
    with pytest.raises(ValueError):
        load_mask(tmp_path / "soft.png", threshold=0)


def test_load_mask_uses_luminance_not_alpha(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[:2, :, :3] = 255  # white top half
    rgba[..., 3] = 0  # fully transparent everywhere: alpha is ignored
    Image.fromarray(rgba, "RGBA").save(tmp_path / "m.png")
    values, was_binary = load_mask(tmp_path / "m.png")
    assert was_binary
    np.testing.assert_array_equal(values, [[1] * 4] * 2 + [[0] * 4] * 2)


def test_load_mask_16bit(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "m.png"), np.array([[0, 65535, 40000, 20000]], dtype=np.uint16))
    values, was_binary = load_mask(tmp_path / "m.png")
    assert not was_binary
    np.testing.assert_array_equal(values, [[0, 1, 1, 0]])


def test_save_image_round_trip_creates_folders_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper" / "out.png"
    save_image(target, RGB)
    np.testing.assert_array_equal(load_rgb(target), RGB)
    save_image(target, RGB[::-1].copy())  # replaces
    np.testing.assert_array_equal(load_rgb(target), RGB[::-1])
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.png"]
    for ext in (".jpg", ".bmp", ".tif", ".webp", ".ppm"):
        save_image(tmp_path / f"o{ext}", RGB)
        assert load_rgb(tmp_path / f"o{ext}").shape == RGB.shape


def test_save_image_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    for target, reason in [
        (tmp_path / "file.txt" / "out.png", "cannot write"),  # parent is a file
        (tmp_path / "out.xyz", "unsupported extension"),
    ]:
        with pytest.raises(ImageSaveError) as err:
            save_image(target, RGB)
        assert str(err.value).startswith(f"cannot write {target}") and reason in str(err.value)
        assert "\n" not in str(err.value)
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageSaveError):
        save_image(tmp_path / "dir.png", RGB)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.png", "file.txt"]


def test_save_image_is_atomic_when_replace_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.png"
    save_image(target, RGB)
    before = target.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ImageSaveError, match="No space left"):
        save_image(target, RGB[::-1].copy())
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_list_images(tmp_path: Path) -> None:
    for name in [
        "b.PNG",
        "a.jpg",
        "sub/c.TiFf",
        "sub/deep/d.webp",
        ".hidden.png",
        ".git/e.png",
        "notes.txt",
        "f.gif",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["a.jpg", "b.PNG", "f.gif", "sub/c.TiFf", "sub/deep/d.webp"]
    assert {
        ".png",
        ".jpg",
        ".jpeg",
        ".bmp",
        ".tif",
        ".tiff",
        ".webp",
        ".gif",
        ".ppm",
    } <= IMAGE_EXTENSIONS
    with pytest.raises(NotADirectoryError):
        list_images(tmp_path / "missing")
