"""What `inpaintlab serve` does with one request: uploaded bytes in, a PNG out.

Decoding, masks and the fill itself are `inpaintlab predict`'s code, so the server's result is
the CLI's result for the same input (same loader, same threshold rule, same `inpaint` /
`outpaint`). Only the limits and the error wording are the server's own. No torch: the model is
an ONNX file run by onnxruntime.
"""

from __future__ import annotations

import io
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from inpaintlab.data.io import ImageLoadError, load_mask, load_rgb

# The shared inference code, and predict's parsing of L,T,R,B extensions (the same rules).
from inpaintlab.errors import ModelError, UserError
from inpaintlab.inference import Model, inpaint, load_model, outpaint
from inpaintlab.inference.regions import parse_extend, resolve_extend

__all__ = [
    "BadRequest",
    "Limits",
    "Model",
    "ModelError",
    "Progress",
    "Result",
    "TooLarge",
    "Upload",
    "fill",
    "http_status",
    "load_model",
]

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BYTES = 50_000_000
PNG_COMPRESS_LEVEL = 3  # as save_image: 3x faster than Pillow's default, ~10% larger


class BadRequest(UserError):
    """The client's input is wrong: HTTP 400 with this one-line message."""

    status = 400


class TooLarge(BadRequest):
    """An upload, an image or a result over the server's limits: HTTP 413."""

    status = 413


@dataclass(frozen=True)
class Limits:
    max_pixels: int = DEFAULT_MAX_PIXELS  # input image, mask and result
    max_bytes: int = DEFAULT_MAX_BYTES  # one request body


@dataclass
class Upload:
    data: bytes
    filename: str | None = None


@dataclass
class Progress:
    """Model passes done and expected for one request; read by GET /api/progress/<job>."""

    state: str = "queued"  # queued | running | done | failed
    done: int = 0
    total: int | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    def as_dict(self) -> dict:
        return {"state": self.state, "done": self.done, "total": self.total}


@dataclass
class Result:
    png: bytes
    width: int
    height: int
    notes: list[str]
    seconds: float
    filename: str


def megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.3g} MP"


def _label(kind: str, upload: Upload) -> str:
    name = re.sub(r"[^\w .()+-]", "_", upload.filename or "")[:80].strip()
    return f"{kind} {name!r}" if name else kind


def _decode(upload: Upload, kind: str, folder: Path, limits: Limits) -> tuple[Path, str]:
    """Write the upload to a temp file (the loaders read files) after checking its pixel count
    from the header alone, so an oversized image is refused before it is decoded."""
    from PIL import Image

    label = _label(kind, upload)
    if not upload.data:
        raise BadRequest(f"{label} is empty")
    try:
        with Image.open(io.BytesIO(upload.data)) as img:
            width, height = img.size
    except Exception:  # not an image: load_rgb / load_mask say so in their words
        width = height = 0
    if width * height > limits.max_pixels:
        raise TooLarge(
            f"{label} is {width}x{height} = {megapixels(width * height)}; "
            f"the limit is {megapixels(limits.max_pixels)} (--max-pixels)"
        )
    path = folder / kind
    path.write_bytes(upload.data)
    return path, label


def http_status(err: UserError) -> int:
    """The answer to a request that failed with err: the model's failure is the server's (500),
    anything else the client's (400, or a BadRequest's own status)."""
    if isinstance(err, ModelError):
        return 500
    return err.status if isinstance(err, BadRequest) else 400


def _load(loader: Callable, path: Path, label: str, *args: object):
    try:
        return loader(path, *args)
    except ImageLoadError as err:
        raise BadRequest(str(err).replace(str(path), label)) from None


def _parse_extend(text: str) -> tuple:
    try:
        return parse_extend(text)
    except ValueError as err:
        raise BadRequest(f"extend: {err}") from None


def _runner(model: Model, progress: Progress | None) -> Model:
    if progress is None:
        return model

    def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = model.run(image, mask)
        progress.done += 1
        return out

    return replace(model, run=run)


def _count_passes(work: Callable[[Callable], np.ndarray]) -> int:
    """How many model calls `work` makes: the tiling depends on the mask and sizes only, never on
    the generated pixels, so a dry run with an identity model makes exactly the same calls."""
    calls = 0

    def identity(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        return image

    work(identity)
    return calls


def encode_png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _stem(upload: Upload) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(upload.filename or "image").stem)[:60]
    return stem.strip("._") or "image"


def fill(
    model: Model,
    image: Upload,
    mask: Upload | None = None,
    extend: str | None = None,
    limits: Limits = Limits(),  # noqa: B008 (frozen)
    threshold: float = 0.5,
    progress: Progress | None = None,
) -> Result:
    """Inpaint `image` where `mask` is white, or extend it by `extend` ('L,T,R,B', pixels or N%),
    exactly as `inpaintlab predict --mask` / `--extend` would; returns the PNG.

    Raises BadRequest / TooLarge (the client's fault, one line) or ModelError (the model failed).
    """
    if mask is None and extend is None:
        raise BadRequest("send a mask (mask=@mask.png, white = fill) or extend=L,T,R,B")
    if mask is not None and extend is not None:
        raise BadRequest("send either a mask or extend=L,T,R,B, not both")
    if not 0 < threshold <= 1:
        raise BadRequest(f"threshold must be in (0, 1], got {threshold:g}")
    start = time.monotonic()
    if progress is not None:
        progress.state = "running"
    notes: list[str] = []
    amounts = _parse_extend(extend) if extend is not None else None
    with tempfile.TemporaryDirectory(prefix="inpaintlab-serve-") as tmp:
        folder = Path(tmp)
        path, label = _decode(image, "image", folder, limits)
        rgb = _load(load_rgb, path, label)
        height, width = rgb.shape[:2]
        if amounts is not None:
            pixels = resolve_extend(amounts, height, width)
            new_w, new_h = width + pixels[0] + pixels[2], height + pixels[1] + pixels[3]
            if new_w * new_h > limits.max_pixels:
                raise TooLarge(
                    f"extending the {width}x{height} image by {extend} gives {new_w}x{new_h} = "
                    f"{megapixels(new_w * new_h)}; the limit is {megapixels(limits.max_pixels)} "
                    "(--max-pixels)"
                )
            if not any(pixels):
                notes.append("nothing to extend; the output is a copy of the input")

            def work(run: Callable) -> np.ndarray:
                return outpaint(rgb, pixels, run, model.image_size)

            suffix = "extended"
        else:
            assert mask is not None
            mask_path, mask_label = _decode(mask, "mask", folder, limits)
            values, was_binary = _load(load_mask, mask_path, mask_label, threshold)
            if values.shape != (height, width):
                raise BadRequest(
                    f"{mask_label} is {values.shape[1]}x{values.shape[0]} but "
                    f"{label} is {width}x{height}; they must be the same size"
                )
            if not was_binary:
                notes.append(f"the mask is not binary; thresholded at {threshold:g}")
            hole = values > 0
            if not hole.any():
                notes.append("the mask is empty; the output is a copy of the input")
            elif hole.all():
                notes.append("the mask covers the whole image; every pixel is generated")

            def work(run: Callable) -> np.ndarray:
                return inpaint(rgb, hole, run, model.image_size)

            suffix = "filled"
        if progress is not None:
            progress.total = _count_passes(work)
        result = work(_runner(model, progress).run)
    png = encode_png(result)
    return Result(
        png=png,
        width=result.shape[1],
        height=result.shape[0],
        notes=notes,
        seconds=time.monotonic() - start,
        filename=f"{_stem(image)}_{suffix}.png",
    )


class ProgressBoard:
    """Progress of recent requests by the client's job id; finished ones are forgotten after
    `keep_s`, and at most `capacity` are kept."""

    def __init__(self, keep_s: float = 300.0, capacity: int = 1000) -> None:
        self.keep_s, self.capacity = keep_s, capacity
        self._jobs: dict[str, Progress] = {}
        self._lock = threading.Lock()

    def start(self, job: str) -> Progress:
        with self._lock:
            now = time.monotonic()
            for key in [
                k for k, p in self._jobs.items() if p.finished and now - p.finished > self.keep_s
            ]:
                del self._jobs[key]
            while len(self._jobs) >= self.capacity:
                del self._jobs[next(iter(self._jobs))]
            progress = self._jobs[job] = Progress()
            return progress

    def finish(self, progress: Progress | None, state: str) -> None:
        if progress is not None:
            progress.state, progress.finished = state, time.monotonic()

    def get(self, job: str) -> Progress | None:
        with self._lock:
            return self._jobs.get(job)
