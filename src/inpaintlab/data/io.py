"""Robust image I/O shared by the prepare stage and `inpaintlab predict`.

Photos arrive in every mode Pillow knows; the rest of the project only ever sees HxWx3 uint8 RGB
in display orientation, and every failure is one user-facing line (`ImageLoadError`), never a
traceback. Conversions, chosen once here so training and prediction agree:

- EXIF orientation is applied (the pixels are what a viewer shows).
- Transparency (RGBA, LA, PA, P with a transparent colour) is composited over **white**, as
  viewers and browsers show it; fully transparent pixels often hold junk colours underneath.
- 16-bit and 32-bit data are scaled to 8 bit (``round(v / 257)`` for 16 bit), not clipped.
  Pillow decodes 48/64-bit RGB(A) PNG and TIFF to 8 bit itself (by truncation), so those are
  read with OpenCV at full depth instead.
- Mode ``I`` holds 16-bit data when its values fit 0..65535, else it is min-max scaled; mode
  ``F`` in [0, 1] is taken as is, in [0, 255] or [0, 65535] scaled, anything else min-max scaled.
- CMYK uses its embedded ICC profile when there is one (Pillow's plain conversion otherwise);
  RGB ICC profiles are left alone so pixel values stay those of the file.
- Multi-frame files (GIF, TIFF) give their first frame.

No torch here: `inpaintlab predict` imports this module and must start fast.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from inpaintlab.errors import UserError, first_line
from inpaintlab.files import atomic_file

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm"}
)

# extension -> (Pillow format, save options) for save_image
_SAVE_FORMATS: dict[str, tuple[str, dict]] = {
    ".png": ("PNG", {"compress_level": 3}),  # 3x faster than Pillow's 6, ~10% larger
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".bmp": ("BMP", {}),
    ".tif": ("TIFF", {"compression": "tiff_deflate"}),
    ".tiff": ("TIFF", {"compression": "tiff_deflate"}),
    ".webp": ("WEBP", {"quality": 95}),
    ".ppm": ("PPM", {}),
}
SAVE_EXTENSIONS: frozenset[str] = frozenset(_SAVE_FORMATS)


class ImageLoadError(UserError, ValueError):
    """One-line, user-facing reason an image (or mask) could not be read."""


class ImageSaveError(UserError, ValueError):
    """One-line, user-facing reason an image could not be written."""


def _rawmode(img: Image.Image) -> str:
    """How the file stores pixels ("RGB;16B" for 48-bit PNG), read before load() clears it."""
    if not img.tile:
        return ""
    args = img.tile[0][3]
    if isinstance(args, tuple):
        args = args[0] if args else ""
    return str(args)


def _open(path: Path) -> tuple[Image.Image, str]:
    """Open and fully decode (truncated files fail here, not later); returns (image, rawmode)."""
    if not path.exists():
        raise ImageLoadError(f"cannot read {path}: no such file")
    if path.is_dir():
        raise ImageLoadError(f"cannot read {path}: is a directory")
    img: Image.Image | None = None
    try:
        if path.stat().st_size == 0:
            raise ImageLoadError(f"cannot read {path}: empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(path)
            rawmode = _rawmode(img)
            img.load()
    except BaseException as err:
        if img is not None:
            img.close()  # do not leak the handle of a file that failed to decode
        if isinstance(err, ImageLoadError | KeyboardInterrupt | SystemExit | MemoryError):
            raise
        if isinstance(err, UnidentifiedImageError):
            reason = "not an image in a known format"
        elif isinstance(err, Image.DecompressionBombError):
            reason = f"too large ({first_line(err)})"
        elif isinstance(err, PermissionError):
            reason = "permission denied"
        else:  # Pillow raises OSError, SyntaxError, ValueError, struct.error, ... on bad data
            reason = f"truncated or corrupt ({first_line(err)})"
        raise ImageLoadError(f"cannot read {path}: {reason}") from None
    if img.width == 0 or img.height == 0:
        img.close()
        raise ImageLoadError(f"cannot read {path}: zero-size image")
    return img, rawmode


def _orientation(img: Image.Image) -> int:
    try:
        value = int(img.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # corrupt EXIF must not make a readable photo unreadable
        return 1
    return value if 1 <= value <= 8 else 1


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """An HxW[x3] array (uint8 RGB or float32 luminance) in display orientation: Pillow's
    ImageOps.exif_transpose, applied after the conversions because 16-bit files are decoded by
    OpenCV (which ignores the orientation of the file it reads)."""
    if orientation == 1:
        return np.ascontiguousarray(array)
    image = Image.fromarray(array)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    image.info["exif"] = exif.tobytes()
    return np.array(ImageOps.exif_transpose(image))


def _scale_numeric(values: np.ndarray, mode: str) -> np.ndarray:
    """Single-channel 16/32-bit int or float data -> float32 in [0, 1]."""
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if mode.startswith("I;16"):
        scaled = values / 65535.0
    elif mode == "F" and low >= 0 and high <= 1:
        scaled = values
    elif mode == "F" and low >= 0 and high <= 255:
        scaled = values / 255.0
    elif low >= 0 and high <= 65535:
        scaled = values / 65535.0
    else:
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return scaled.astype(np.float32)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Float in [0, 1] -> uint8, rounded (65535 -> 255, 257 -> 1)."""
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def _over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite float RGB in [0, 1] over white with float alpha in [0, 1]."""
    return rgb * alpha[..., None] + (1.0 - alpha[..., None])


def _read_deep(path: Path) -> np.ndarray | None:
    """A 16-bit colour file at full depth as float32 HxWxC RGB(A) in [0, 1] (OpenCV), or None."""
    import cv2

    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None or data.dtype != np.uint16:
        return None
    data = data.astype(np.float32) / 65535.0
    if data.ndim == 2:
        return np.repeat(data[..., None], 3, axis=2)
    if data.shape[2] == 2:
        return np.concatenate([np.repeat(data[..., :1], 3, axis=2), data[..., 1:]], axis=2)
    if data.shape[2] == 3:
        return data[..., ::-1]
    return np.concatenate([data[..., 2::-1], data[..., 3:4]], axis=2)


def _cmyk_to_rgb(img: Image.Image) -> Image.Image:
    profile = img.info.get("icc_profile")
    if profile:
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            return ImageCms.profileToProfile(
                img, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
        except Exception:  # broken or unsupported profile: fall back to the plain conversion
            pass
    return img.convert("RGB")


def _rgb_array(img: Image.Image, path: Path, rawmode: str) -> np.ndarray:
    """Decoded Pillow image -> float32 RGB in [0, 1] or uint8 RGB, before orientation."""
    mode = img.mode
    if ";16" in rawmode and not mode.startswith("I"):
        deep = _read_deep(path)
        if deep is not None:
            if deep.shape[2] == 4:
                return _over_white(deep[..., :3], deep[..., 3])
            return deep
    if mode == "RGB":
        return np.asarray(img)
    if mode in ("L", "1"):
        return np.repeat(np.asarray(img.convert("L"))[..., None], 3, axis=2)
    if mode.startswith("I") or mode == "F":
        gray = _scale_numeric(np.asarray(img), mode)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P" and "transparency" not in img.info:
        return np.asarray(img.convert("RGB"))
    if mode == "CMYK":
        return np.asarray(_cmyk_to_rgb(img))
    if mode in ("RGBA", "LA", "PA", "P", "RGBa", "La"):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        return _over_white(rgba[..., :3], rgba[..., 3])
    return np.asarray(img.convert("RGB"))  # YCbCr, LAB, HSV, ...


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read any common image as HxWx3 uint8 RGB in display orientation (see module docstring).

    Raises ImageLoadError("cannot read <path>: <reason>") for missing, unreadable, truncated,
    corrupt, zero-size and non-image files.
    """
    path = Path(path)
    img, rawmode = _open(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = _rgb_array(img, path, rawmode)
            orientation = _orientation(img)
    except Exception as err:
        raise ImageLoadError(
            f"cannot read {path}: cannot convert mode {img.mode} ({first_line(err)})"
        ) from None
    finally:
        img.close()
    if array.dtype != np.uint8:
        array = _to_uint8(array)
    return _orient(array, orientation)


def _gray_array(img: Image.Image, path: Path, rawmode: str) -> np.ndarray:
    """Decoded Pillow image -> float32 luminance in [0, 1]; alpha is ignored."""
    mode = img.mode
    if ";16" in rawmode and not mode.startswith("I"):
        deep = _read_deep(path)
        if deep is not None:
            return (deep[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(
                np.float32
            )
    if mode.startswith("I") or mode == "F":
        values = np.asarray(img)
        if mode != "F" and int(values.max()) == 1 and int(values.min()) >= 0:
            return values.astype(np.float32)  # a 0/1 mask saved as integers
        return _scale_numeric(values, mode)
    if mode == "LA":
        values = np.asarray(img)[..., 0]
    elif mode in ("L", "P"):
        values = np.asarray(img if mode == "L" else img.convert("L"))
    else:
        values = np.asarray(img.convert("RGB").convert("L"))  # drops alpha, ITU-R 601 luma
    if int(values.max()) == 1:
        return values.astype(np.float32)  # a 0/1 mask saved as 8-bit looks black but means 1
    return values.astype(np.float32) / 255.0


def load_mask(path: str | os.PathLike, threshold: float = 0.5) -> tuple[np.ndarray, bool]:
    """Read a mask image as HxW float32 in {0, 1} (1 = generate) and whether it was already binary.

    The mask is the image's luminance (alpha is ignored: an RGBA mask is read by its colour),
    scaled to [0, 1] by its bit depth and thresholded at ``value >= threshold``. Masks saved with
    the values 0 and 1 (numpy arrays written straight to 8-bit files) count as binary 0/1 masks.
    EXIF orientation is applied, as for images.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    path = Path(path)
    img, rawmode = _open(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gray = _gray_array(img, path, rawmode)
            orientation = _orientation(img)
    except Exception as err:
        raise ImageLoadError(
            f"cannot read {path}: cannot convert mode {img.mode} ({first_line(err)})"
        ) from None
    finally:
        img.close()
    was_binary = bool(np.all((gray == 0) | (gray == 1)))
    mask = (gray >= threshold).astype(np.float32)
    return _orient(mask, orientation), was_binary


def save_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an HxWx3 (or HxW) uint8 image atomically: a temp file in the same folder, then
    os.replace, so readers never see a half-written file. The format follows the extension;
    missing folders are created. Raises ImageSaveError (one line) when it cannot be written."""
    path = Path(path)
    array = np.asarray(rgb)
    if array.dtype != np.uint8 or not (
        array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))
    ):
        raise ValueError(f"save_image needs HxW or HxWx3/4 uint8, got {array.dtype} {array.shape}")
    suffix = path.suffix.lower()
    if suffix not in _SAVE_FORMATS:
        raise ImageSaveError(
            f"cannot write {path}: unsupported extension {path.suffix or '(none)'!r} "
            f"(use one of {', '.join(sorted(_SAVE_FORMATS))})"
        )
    fmt, options = _SAVE_FORMATS[suffix]
    if fmt == "JPEG" and array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a directory")
        with atomic_file(path) as handle:
            Image.fromarray(array).save(handle, format=fmt, **options)
    except (OSError, ValueError, KeyError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else first_line(err)
        raise ImageSaveError(f"cannot write {path}: {reason}") from None


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under folder (recursive), by extension (any case), sorted by relative path.

    Hidden files and folders (".name") are skipped: editors, OS thumbnails and .git live there.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())
