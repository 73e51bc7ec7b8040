"""`inpaintlab predict`: fill holes in photos, or extend them, with an exported model.

    inpaintlab predict --model models/export/model.onnx --image in.jpg --mask m.png --out out.png
    inpaintlab predict --model M --input-dir photos/ --extend 0,0,50%,0 --output-dir wider/

The model is `model.onnx` (onnxruntime, CPU; torch is never imported) or TorchScript `model.pt`
(torch is imported only then), with the contract of DESIGN.md: `image` [N,3,H,W] and `mask`
[N,1,H,W] float32 in [0, 1], mask 1 = generate, output composited, H and W multiples of 8. Its
training size S comes from the ONNX metadata key "image_size" (or `image_size.txt` in a .pt),
else `export.json` beside the model, else 256.

Only generated pixels are ever written: every pixel outside the mask is bit-exact in the output
(exactly so when it is saved as PNG), for any image size.

How an image of any size is processed (sharpness first; the model is fully convolutional):

1. **Windows.** Each connected part of the mask gets a context window: its bounding box grown
   by max(its short side, S/4) on every side and to at least S x S, clipped to the image.
   Overlapping windows merge. A small hole in a large photo is therefore processed at full
   resolution in a small crop around it; the rest of the photo is not touched or resampled.
2. **Working scale.** A window that fits in `--max-side` (default 2 S) runs at full resolution.
   A larger window is downscaled only as far as the hole needs: until the hole's reach (the
   largest distance from a generated pixel to a known one) is at most S/2 — the reach of the
   biggest training masks — and never below the scale at which the window fits one tile. Thin
   or narrow holes (scratches, border bands) in large photos stay at full resolution. When a
   window is downscaled (INTER_AREA; a low-res pixel is generated if any of its pixels is), the
   generated result is upscaled (bicubic) and only the masked pixels are pasted back; then a
   band S/4 wide along the hole's edge is generated again at full resolution (S x S tiles),
   with the sharp original outside and the coarse fill inside as context, so the boundary
   between original and generated pixels shows no resolution seam.
3. **Tiles.** At working scale, a window larger than `--max-side` is cut into overlapping tiles
   of that side (quarter-tile overlap), run in raster order. Each tile keeps the generated pixels
   of its core (up to the middle of each overlap), and later tiles see them as known context,
   so neighbouring tiles agree and every generated pixel had context on all sides.
4. **Padding.** A tile whose sides are not multiples of 8 is padded at the bottom/right by
   reflection, the mask reflected like the image: padding never turns unknown pixels into
   known-looking ones (which matters for holes touching the border and for outpainting), and
   the padding is cropped off afterwards. Small images are only padded, never upscaled.

Outpainting (`--extend L,T,R,B`, pixels or % of the original width for L/R and height for T/B)
grows the canvas in steps of at most 50% of the current side per axis (the depth of the widest
training border bands), each step being an inpainting of the new border (filled beforehand by
edge replication, which the model blanks anyway). Wider extensions take several steps, each
seeing the previous step's result as context. The original pixels are never modified.

Errors are one `error: ...` line on stderr (exit 2 for bad input, 1 when the model fails);
`note: ...` lines report what was done with odd input (thresholded masks, empty masks).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inpaintlab.data.io import (
    SAVE_EXTENSIONS,
    ImageLoadError,
    ImageSaveError,
    list_images,
    load_mask,
    load_rgb,
    save_image,
)
from inpaintlab.utils import available_cpus

DEFAULT_IMAGE_SIZE = 256
SIZE_MULTIPLE = 8
OUTPAINT_STEP = 0.5  # at most this fraction of the current side is added per axis and step
REACH_FRACTION = 0.5  # largest hole reach at working scale, as a fraction of the training size
REFINE_FRACTION = 0.25  # width of the full-resolution edge band after a downscaled pass, idem
KEEP_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg"})  # other inputs are written as .png
MAX_OUTPUT_PIXELS = 200_000_000  # a typo like --extend 0,0,10000%,0 must not exhaust memory

Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]
Box = tuple[int, int, int, int]
Extend = tuple[tuple[float, bool], ...]  # (value, is_percent) for left, top, right, bottom
Note = tuple[str, str]  # (kind, text): kinds "threshold", "empty", "full"


class PredictError(Exception):
    """Bad input the user can fix: printed as one `error:` line, exit 2."""


class ModelError(Exception):
    """The model could not be loaded or failed while running: one `error:` line, exit 1."""


# --------------------------------------------------------------------------- the model


@dataclass
class Model:
    """A loaded exported model: run(image [N,3,H,W], mask [N,1,H,W]) -> [N,3,H,W] float32."""

    run: Runner
    image_size: int
    path: Path


def _parse_size(value: object) -> int | None:
    try:
        size = int(str(value).strip())
    except ValueError:
        return None
    return size if size >= SIZE_MULTIPLE else None


def _size_from_export_json(model_path: Path) -> int | None:
    try:
        info = json.loads((model_path.parent / "export.json").read_text())
    except (OSError, ValueError):
        return None
    return _parse_size(info.get("image_size")) if isinstance(info, dict) else None


def _load_onnx(path: Path, threads: int) -> tuple[Runner, int | None]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # warnings would break the one-line stderr contract
    session = ort.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if "image" not in inputs or "mask" not in inputs:
        raise ModelError(f"{path} has inputs {inputs}; the contract needs 'image' and 'mask'")
    output = "output" if "output" in outputs else outputs[0]
    size = _parse_size(session.get_modelmeta().custom_metadata_map.get("image_size", ""))

    def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run([output], {"image": image, "mask": mask})[0]

    return run, size


def _load_torchscript(path: Path, threads: int) -> tuple[Runner, int | None]:
    import torch  # only for .pt models: ONNX prediction starts without it

    torch.set_num_threads(threads)
    extra = {"image_size.txt": ""}
    module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    module.eval()

    def run(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(image), torch.from_numpy(mask)).numpy()

    raw = extra["image_size.txt"]
    return run, _parse_size(raw.decode(errors="replace") if isinstance(raw, bytes) else raw)


def load_model(path: str | os.PathLike, threads: int | None = None) -> Model:
    """Load model.onnx (onnxruntime, CPU) or model.pt (TorchScript) and its training size."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".onnx", ".pt"):
        raise PredictError(f"unsupported model {path}: expected a .onnx or a TorchScript .pt file")
    if not path.is_file():
        raise PredictError(
            f"model {path} not found" + (" (it is a folder)" if path.is_dir() else "")
        )
    threads = threads or available_cpus()
    try:
        run, size = (
            _load_onnx(path, threads) if suffix == ".onnx" else _load_torchscript(path, threads)
        )
    except ModelError:
        raise
    except ModuleNotFoundError as err:
        raise ModelError(f"cannot load model {path}: {err.name} is not installed") from None
    except Exception as err:  # protobuf, onnxruntime and torch.jit raise many types
        raise ModelError(f"cannot load model {path}: {_first_line(err)}") from None
    size = size or _size_from_export_json(path) or DEFAULT_IMAGE_SIZE
    return Model(run=run, image_size=size, path=path)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


# --------------------------------------------------------------------------- inpainting


def _pad(array: np.ndarray, pad_h: int, pad_w: int) -> np.ndarray:
    """Pad bottom/right by reflection (edge replication where a side is 1 pixel)."""
    widths = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (array.ndim - 2)
    mode = "reflect" if min(array.shape[:2]) > 1 else "edge"
    return np.pad(array, widths, mode=mode)


def run_tile(run: Runner, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One model call on an HxWx3 uint8 tile and HxW bool mask -> HxWx3 uint8 (padded to 8)."""
    h, w = mask.shape
    pad_h, pad_w = -h % SIZE_MULTIPLE, -w % SIZE_MULTIPLE
    x = image.astype(np.float32) / 255.0
    m = mask.astype(np.float32)
    if pad_h or pad_w:
        x, m = _pad(x, pad_h, pad_w), _pad(m, pad_h, pad_w)
    x_in = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
    try:
        y = np.asarray(run(x_in, np.ascontiguousarray(m[None, None])))
    except Exception as err:
        raise ModelError(f"the model failed on a {w}x{h} tile: {_first_line(err)}") from None
    if y.shape != x_in.shape:
        raise ModelError(f"the model returned shape {list(y.shape)} for input {list(x_in.shape)}")
    y = np.nan_to_num(y[0].transpose(1, 2, 0)[:h, :w], nan=0.0)
    return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)


def _spans(length: int, tile: int) -> list[tuple[int, int, int, int]]:
    """Tiles along one axis: (start, end, core_start, core_end), overlapping by a quarter tile
    (at least), cores meeting in the middle of each overlap."""
    if length <= tile:
        return [(0, length, 0, length)]
    count = -(-(length - tile) // (tile - tile // 4)) + 1  # tiles needed with quarter overlaps
    starts = [round(k * (length - tile) / (count - 1)) for k in range(count)]  # spread evenly
    bounds = (
        [0] + [(starts[k + 1] + starts[k] + tile) // 2 for k in range(len(starts) - 1)] + [length]
    )
    return [(s, s + tile, bounds[k], bounds[k + 1]) for k, s in enumerate(starts)]


def fill_tiles(run: Runner, canvas: np.ndarray, todo: np.ndarray, tile: int) -> None:
    """Generate every `todo` pixel of canvas in place, tile by tile in raster order; pixels a
    tile generated in its core are known context for the next tiles."""
    h, w = todo.shape
    for r0, r1, rc0, rc1 in _spans(h, tile):
        for c0, c1, cc0, cc1 in _spans(w, tile):
            if not todo[rc0:rc1, cc0:cc1].any():
                continue
            sub_image, sub_todo = canvas[r0:r1, c0:c1], todo[r0:r1, c0:c1]
            generated = run_tile(run, sub_image, sub_todo)
            core = np.zeros_like(sub_todo)
            core[rc0 - r0 : rc1 - r0, cc0 - c0 : cc1 - c0] = True
            core &= sub_todo
            sub_image[core] = generated[core]
            sub_todo[core] = False


def context_windows(mask: np.ndarray, image_size: int) -> list[Box]:
    """(y0, y1, x0, x1) windows around the mask's connected parts, merged where they overlap."""
    import cv2

    height, width = mask.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count - 1 > 256:  # speckle: one window around everything
        ys, xs = np.nonzero(mask)
        parts = [
            (
                int(xs.min()),
                int(ys.min()),
                int(xs.max() - xs.min() + 1),
                int(ys.max() - ys.min() + 1),
            )
        ]
    else:
        parts = [tuple(int(v) for v in stats[i, :4]) for i in range(1, count)]
    windows = []
    for x, y, w, h in parts:
        margin = max(min(w, h), image_size // 4)
        y0, y1 = _grow(y - margin, y + h + margin, image_size, height)
        x0, x1 = _grow(x - margin, x + w + margin, image_size, width)
        windows.append((y0, y1, x0, x1))
    merged = True
    while merged:
        merged, result = False, []
        for win in windows:
            for i, other in enumerate(result):
                if (
                    win[0] < other[1]
                    and other[0] < win[1]
                    and win[2] < other[3]
                    and other[2] < win[3]
                ):
                    result[i] = (
                        min(win[0], other[0]),
                        max(win[1], other[1]),
                        min(win[2], other[2]),
                        max(win[3], other[3]),
                    )
                    merged = True
                    break
            else:
                result.append(win)
        windows = result
    return sorted(windows)


def _grow(start: int, end: int, minimum: int, limit: int) -> tuple[int, int]:
    """Grow [start, end) to at least `minimum` long (centred), shifted inside [0, limit)."""
    if end - start < minimum:
        extra = minimum - (end - start)
        start, end = start - extra // 2, end + extra - extra // 2
    if start < 0:
        start, end = 0, end - start
    if end > limit:
        start, end = start - (end - limit), limit
    return max(0, start), min(limit, end)


def working_scale(todo: np.ndarray, image_size: int, max_side: int) -> float:
    """Scale at which to run a window: 1 if it fits one tile, else as low as the hole's reach
    needs (reach <= REACH_FRACTION * image_size) but never below fitting the window in a tile."""
    import cv2

    h, w = todo.shape
    fit = min(1.0, max_side / max(h, w))
    if fit >= 1.0 or todo.all():
        return fit
    reach = float(cv2.distanceTransform(todo.astype(np.uint8), cv2.DIST_L2, 5).max())
    return max(fit, min(1.0, REACH_FRACTION * image_size / max(reach, 1.0)))


def inpaint(
    image: np.ndarray, mask: np.ndarray, run: Runner, image_size: int, max_side: int | None = None
) -> np.ndarray:
    """Generate the pixels where mask is non-zero; all other pixels are returned unchanged.

    image: HxWx3 uint8; mask: HxW (bool or {0, 1}); see the module docstring for the strategy.
    """
    import cv2

    max_side = _tile_side(max_side or 2 * image_size)
    out = image.copy()
    todo = np.asarray(mask) > 0
    if not todo.any():
        return out
    todo = todo.copy()
    for y0, y1, x0, x1 in context_windows(todo, image_size):
        win, win_todo = out[y0:y1, x0:x1], todo[y0:y1, x0:x1]
        if not win_todo.any():
            continue
        scale = working_scale(win_todo, image_size, max_side)
        if scale >= 1.0:
            fill_tiles(run, win, win_todo, max_side)
            continue
        h, w = win_todo.shape
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(win, size, interpolation=cv2.INTER_AREA)
        small_todo = cv2.resize(win_todo.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
        fill_tiles(run, small, small_todo, max_side)
        upscaled = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        win[win_todo] = upscaled[win_todo]
        # refine: regenerate a band along the hole's edge at full resolution, with the sharp
        # original outside and the coarse fill inside as context, so the edge shows no seam
        distance = cv2.distanceTransform(win_todo.astype(np.uint8), cv2.DIST_L2, 5)
        band = win_todo & (distance <= REFINE_FRACTION * image_size)
        win_todo[...] = False
        fill_tiles(run, win, band, min(max_side, _tile_side(image_size)))
    return out


def _tile_side(side: int) -> int:
    return max(2 * SIZE_MULTIPLE, side // SIZE_MULTIPLE * SIZE_MULTIPLE)


def _split(first: int, second: int, limit: int) -> tuple[int, int]:
    """Share at most `limit` pixels of growth between two opposite sides, proportionally."""
    if first + second <= limit:
        return first, second
    a = min(first, round(limit * first / (first + second)))
    return a, min(second, limit - a)


def outpaint(
    image: np.ndarray,
    extend: tuple[int, int, int, int],
    run: Runner,
    image_size: int,
    max_side: int | None = None,
    step: float = OUTPAINT_STEP,
) -> np.ndarray:
    """Extend image by (left, top, right, bottom) pixels, in steps of at most `step` of the
    current side per axis; the original pixels are unchanged in the result."""
    import cv2

    left, top, right, bottom = extend
    current = image
    while left or top or right or bottom:
        h, w = current.shape[:2]
        dl, dr = _split(left, right, max(1, int(step * w)))
        dt, db = _split(top, bottom, max(1, int(step * h)))
        canvas = cv2.copyMakeBorder(current, dt, db, dl, dr, cv2.BORDER_REPLICATE)
        mask = np.ones(canvas.shape[:2], dtype=bool)
        mask[dt : dt + h, dl : dl + w] = False
        current = inpaint(canvas, mask, run, image_size, max_side)
        left, top, right, bottom = left - dl, top - dt, right - dr, bottom - db
    return current


# --------------------------------------------------------------------------- arguments


def parse_box(text: str) -> Box:
    """'X,Y,W,H' (pixels) for argparse."""
    try:
        x, y, w, h = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected X,Y,W,H in whole pixels, got {text!r}"
        ) from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"box width and height must be positive, got {text!r}")
    return x, y, w, h


def parse_extend(text: str) -> Extend:
    """'L,T,R,B', each in pixels or a percentage ('50%') of the original side, for argparse."""
    parts = text.split(",")
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"expected L,T,R,B (pixels or N%), got {text!r}")
    values = []
    for part in parts:
        part = part.strip()
        try:
            value = float(part[:-1]) if part.endswith("%") else int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected L,T,R,B (whole pixels or N%), got {text!r}"
            ) from None
        if not value >= 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"extension amounts must be >= 0, got {text!r}")
        values.append((float(value), part.endswith("%")))
    return tuple(values)


def resolve_extend(extend: Extend, height: int, width: int) -> tuple[int, int, int, int]:
    """Pixels to add on (left, top, right, bottom); % of the width for L/R, height for T/B."""
    sides = (width, height, width, height)
    return tuple(
        round(v * side / 100) if pct else int(v)
        for (v, pct), side in zip(extend, sides, strict=True)
    )


def box_mask(height: int, width: int, box: Box) -> np.ndarray:
    x, y, w, h = box
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x0 >= x1 or y0 >= y1:
        raise PredictError(f"--box {x},{y},{w},{h} lies outside the {width}x{height} image")
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _max_side(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole pixels, got {text!r}") from None
    if value < 2 * SIZE_MULTIPLE:
        raise argparse.ArgumentTypeError(f"must be at least {2 * SIZE_MULTIPLE}, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inpaintlab predict",
        description="Inpaint (fill a masked region) or outpaint (extend the borders of) images with "
        "an exported model. Pixels outside the mask are never changed.",
    )
    parser.add_argument(
        "--model",
        required=True,
        type=Path,
        help="exported model: model.onnx or TorchScript model.pt",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", type=Path, help="one input image")
    source.add_argument("--input-dir", type=Path, help="a folder of images (recursive)")
    region = parser.add_mutually_exclusive_group(required=True)
    region.add_argument(
        "--mask", type=Path, help="mask image, same size as the image; white/1 = generate"
    )
    region.add_argument(
        "--mask-dir",
        type=Path,
        help="folder of masks matched to --input-dir images by name: a.png or a_mask.png for a.jpg",
    )
    region.add_argument(
        "--box", type=parse_box, metavar="X,Y,W,H", help="generate this rectangle (pixels)"
    )
    region.add_argument(
        "--extend",
        type=parse_extend,
        metavar="L,T,R,B",
        help="outpaint: add this many pixels (or N%% of the width/height) on each side",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="output file (format from its extension)")
    target.add_argument(
        "--output-dir",
        type=Path,
        help="output folder: same relative names (.png unless the input is .png/.jpg/.jpeg)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument(
        "--threshold",
        type=_threshold,
        default=0.5,
        help="mask pixels >= this fraction of full scale are generated (default 0.5)",
    )
    parser.add_argument(
        "--max-side",
        type=_max_side,
        default=None,
        metavar="N",
        help="largest side the model runs at; larger regions are tiled or downscaled "
        "(default: 2x the model's training size)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar and no 'wrote ...' line"
    )
    return parser


# --------------------------------------------------------------------------- running


@dataclass
class Job:
    """One image to process; mask is a path, a box, an extension or None (--mask-dir miss)."""

    image: Path
    out: Path
    mask: Path | None = None
    box: Box | None = None
    extend: Extend | None = None


def process(
    job: Job, model: Model, threshold: float, max_side: int | None
) -> tuple[tuple[int, int], list[Note]]:
    """Run one job and write its output; returns ((width, height), notes as (kind, text))."""
    notes: list[Note] = []
    try:
        image = load_rgb(job.image)
    except ImageLoadError as err:
        raise PredictError(str(err)) from None
    height, width = image.shape[:2]
    if job.extend is not None:
        amounts = resolve_extend(job.extend, height, width)
        new_w, new_h = width + amounts[0] + amounts[2], height + amounts[1] + amounts[3]
        if new_w * new_h > MAX_OUTPUT_PIXELS:
            raise PredictError(
                f"--extend would make {job.image} {new_w}x{new_h} pixels; that is too large"
            )
        if not any(amounts):
            notes.append(
                ("empty", f"nothing to extend for {job.image}; the output is a copy of the input")
            )
        result = outpaint(image, amounts, model.run, model.image_size, max_side)
    else:
        if job.box is not None:
            mask = box_mask(height, width, job.box)
        else:
            assert job.mask is not None
            try:
                values, was_binary = load_mask(job.mask, threshold)
            except ImageLoadError as err:
                raise PredictError(str(err).replace("cannot read", "cannot read mask", 1)) from None
            if values.shape != (height, width):
                raise PredictError(
                    f"mask {job.mask} is {values.shape[1]}x{values.shape[0]} but image {job.image} is {width}x{height}"
                )
            if not was_binary:
                notes.append(
                    (
                        "threshold",
                        f"mask {job.mask} is not binary; thresholded at {threshold:g} (>= {threshold:g} of white = generate)",
                    )
                )
            mask = values > 0
        if not mask.any():
            notes.append(
                ("empty", f"the mask for {job.image} is empty; the output is a copy of the input")
            )
        elif mask.all():
            notes.append(
                (
                    "full",
                    f"the mask covers all of {job.image}; the model generates every pixel without context",
                )
            )
        result = inpaint(image, mask, model.run, model.image_size, max_side)
    try:
        save_image(job.out, result)
    except ImageSaveError as err:
        raise PredictError(str(err)) from None
    return (result.shape[1], result.shape[0]), notes


def output_name(relative: Path) -> Path:
    return relative if relative.suffix.lower() in KEEP_EXTENSIONS else relative.with_suffix(".png")


def _check_output(out: Path, overwrite: bool) -> None:
    if out.suffix.lower() not in SAVE_EXTENSIONS:
        raise PredictError(
            f"cannot write {out}: unsupported extension (use one of {', '.join(sorted(SAVE_EXTENSIONS))})"
        )
    if out.is_dir():
        raise PredictError(f"cannot write {out}: is a directory")
    if out.exists() and not overwrite:
        raise PredictError(f"{out} exists; pass --overwrite to replace it")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _escapes(path: Path, folder: Path) -> Path | None:
    """Where path really is, when a symlink takes it outside folder; None when it stays in."""
    return None if _inside(path, folder) else path.resolve()


def _symlink_on_the_way(out: Path, output_dir: Path) -> Path | None:
    """The first symlink among out's folders below output_dir, or out itself: writing there
    would write through the link (output_dir itself is the user's choice and may be one)."""
    current = output_dir
    for part in out.relative_to(output_dir).parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def _mask_finder(mask_dir: Path, same_dir: bool) -> Callable[[Path], Path | None]:
    """Masks matched by relative stem: a.jpg -> a.* or a_mask.* (only a_mask.* when masks live
    beside the images), then by bare name anywhere in mask_dir when that is unambiguous."""
    by_stem: dict[str, Path] = {}
    by_name: dict[str, list[Path]] = {}
    for path in list_images(mask_dir):
        stem = path.relative_to(mask_dir).with_suffix("").as_posix()
        by_stem.setdefault(stem, path)
        by_name.setdefault(Path(stem).name, []).append(path)

    def find(relative: Path) -> Path | None:
        stem = relative.with_suffix("").as_posix()
        suffixes = ("_mask",) if same_dir else ("", "_mask")
        for suffix in suffixes:
            if stem + suffix in by_stem:
                return by_stem[stem + suffix]
        for suffix in suffixes:
            candidates = by_name.get(Path(stem).name + suffix, [])
            if len(candidates) == 1:
                return candidates[0]
        return None

    return find


def _folder_jobs(args: argparse.Namespace) -> tuple[list[Job], list[str], list[str]]:
    """Jobs for --input-dir, the skip reasons known before running (missing masks, ...), and
    notes: inputs skipped because a symlink leads out of the input (or mask) folder."""
    input_dir: Path = args.input_dir
    output_dir: Path = args.output_dir
    if not input_dir.is_dir():
        raise PredictError(f"input folder {input_dir} not found")
    if output_dir.exists() and input_dir.resolve() == output_dir.resolve():
        raise PredictError("--output-dir must differ from --input-dir (inputs would be replaced)")
    if args.mask_dir is not None and not args.mask_dir.is_dir():
        raise PredictError(f"mask folder {args.mask_dir} not found")
    if args.mask is not None and not args.mask.is_file():
        raise PredictError(f"cannot read mask {args.mask}: no such file")
    same_dir = args.mask_dir is not None and args.mask_dir.resolve() == input_dir.resolve()
    find_mask = _mask_finder(args.mask_dir, same_dir) if args.mask_dir is not None else None
    images = [p for p in list_images(input_dir) if not _inside(p, output_dir)]
    if same_dir:
        images = [p for p in images if not p.stem.endswith("_mask")]
    if not images:
        raise PredictError(f"no image files in {input_dir}")
    jobs, skipped, notes, claimed = [], [], [], {}
    for path in images:
        relative = path.relative_to(input_dir)
        target = _escapes(path, input_dir)
        if target is not None:
            notes.append(f"skipped {path}: a symlink to {target}, outside {input_dir}")
            continue
        out = output_dir / output_name(relative)
        link = _symlink_on_the_way(out, output_dir)
        if link is not None:
            skipped.append(f"{path}: its output {out} would be written through the symlink {link}")
            continue
        if out in claimed:
            skipped.append(f"{path}: its output {out} is already written for {claimed[out]}")
            continue
        claimed[out] = path
        if out.exists() and not args.overwrite:
            skipped.append(f"{out} exists; pass --overwrite to replace it")
            continue
        job = Job(image=path, out=out, mask=args.mask, box=args.box, extend=args.extend)
        if find_mask is not None:
            job.mask = find_mask(relative)
            if job.mask is None:
                skipped.append(
                    f"{path}: no mask {relative.stem}.* or {relative.stem}_mask.* in {args.mask_dir}"
                )
                continue
            target = _escapes(job.mask, args.mask_dir)
            if target is not None:
                notes.append(
                    f"skipped {path}: its mask {job.mask} is a symlink to {target}, outside {args.mask_dir}"
                )
                continue
        jobs.append(job)
    return jobs, skipped, notes


def _run_folder(args: argparse.Namespace, model_path: Path) -> int:
    jobs, skipped, link_notes = _folder_jobs(args)
    for reason in skipped:
        print(f"skipped: {reason}", file=sys.stderr)
    for note in link_notes:
        print(f"note: {note}", file=sys.stderr)
    written = 0
    model = load_model(model_path) if jobs else None
    from tqdm import tqdm

    notes: dict[str, int] = {}
    with tqdm(
        jobs, desc="predict", unit="img", file=sys.stderr, disable=args.quiet or not jobs
    ) as bar:
        for job in bar:
            link = _symlink_on_the_way(job.out, args.output_dir)  # again: it may have appeared
            if link is not None:
                skipped.append(
                    f"{job.image}: its output would be written through the symlink {link}"
                )
                bar.write(f"skipped: {skipped[-1]}", file=sys.stderr)
                continue
            try:
                _, job_notes = process(job, model, args.threshold, args.max_side)
            except (PredictError, ModelError) as err:  # one bad file must not stop the batch
                skipped.append(str(err))
                bar.write(f"skipped: {err}", file=sys.stderr)
                continue
            written += 1
            for kind, _ in job_notes:
                notes[kind] = notes.get(kind, 0) + 1
    summaries = {
        "threshold": f"non-binary masks were thresholded at {args.threshold:g}",
        "empty": "images had an empty mask (or nothing to extend) and were copied unchanged",
        "full": "images were masked completely and generated without context",
    }
    for kind, text in summaries.items():
        if notes.get(kind):
            print(f"note: {notes[kind]} {text}", file=sys.stderr)
    print(
        f"{written} written, {len(skipped)} skipped" + (f" -> {args.output_dir}" if written else "")
    )
    return 1 if skipped else 0


def _run_single(args: argparse.Namespace, model_path: Path) -> int:
    out = args.out if args.out is not None else args.output_dir / output_name(Path(args.image.name))
    _check_output(out, args.overwrite)
    if not args.image.is_file():
        raise PredictError(
            f"cannot read {args.image}: "
            + ("is a directory" if args.image.is_dir() else "no such file")
        )
    if args.mask is not None and not args.mask.is_file():
        raise PredictError(f"cannot read mask {args.mask}: no such file")
    model = load_model(model_path)
    job = Job(image=args.image, out=out, mask=args.mask, box=args.box, extend=args.extend)
    (width, height), notes = process(job, model, args.threshold, args.max_side)
    for _, text in notes:
        print(f"note: {text}", file=sys.stderr)
    if not args.quiet:
        print(f"wrote {out} ({width}x{height})")
    return 0


def _attach_negative_values(argv: list[str]) -> list[str]:
    """`--box -5,10,20,20` -> `--box=-5,10,20,20`: argparse would read -5,... as an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in ("--box", "--extend") and arg[:1] == "-" and arg[1:2].isdigit():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    """`inpaintlab predict`; returns the exit code (argparse usage errors exit 2 directly)."""
    parser = build_parser()
    args = parser.parse_args(_attach_negative_values(sys.argv[1:] if argv is None else argv))
    if args.input_dir is not None and args.output_dir is None:
        parser.error("--input-dir needs --output-dir")
    if args.mask_dir is not None and args.input_dir is None:
        parser.error("--mask-dir needs --input-dir (use --mask with --image)")
    model_path: Path = args.model
    try:
        if model_path.suffix.lower() not in (".onnx", ".pt"):
            raise PredictError(
                f"unsupported model {model_path}: expected a .onnx or a TorchScript .pt file"
            )
        if not model_path.is_file():
            raise PredictError(f"model {model_path} not found")
        if args.input_dir is not None:
            return _run_folder(args, model_path)
        return _run_single(args, model_path)
    except PredictError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; no partial output was written", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("INPAINTLAB_DEBUG"):
            raise
        print(
            f"error: unexpected {type(err).__name__}: {_first_line(err)} (INPAINTLAB_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
