"""`inpaintlab predict`: fill holes in photos, or extend them, with an exported model.

    inpaintlab predict --model models/export/model.onnx --image in.jpg --mask m.png --out out.png
    inpaintlab predict --model M --input-dir photos/ --extend 0,0,50%,0 --output-dir wider/

This module is the command line: arguments, masks from files/boxes/extensions, folder mode and
the exit codes. The model runtime and the strategy for images of any size live in
`inpaintlab.inference` (shared with evaluate, the benchmarks and `serve`).

Only generated pixels are ever written: every pixel outside the mask is bit-exact in the output
(exactly so when it is saved as PNG), for any image size.

Outpainting (`--extend L,T,R,B`, pixels or % of the original width for L/R and height for T/B)
grows the canvas; see `inpaintlab.inference.strategy.outpaint`.

Errors are one `error: ...` line on stderr (exit 2 for bad input, 1 when the model fails);
`note: ...` lines report what was done with odd input (thresholded masks, empty masks).
"""

from __future__ import annotations

import argparse
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
from inpaintlab.inference import Model, ModelError, PredictError, inpaint, load_model, outpaint
from inpaintlab.inference.errors import first_line
from inpaintlab.inference.runtime import SIZE_MULTIPLE

__all__ = [
    "ModelError",
    "PredictError",
    "inpaint",
    "load_model",
    "main",
    "outpaint",
]

KEEP_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg"})  # other inputs are written as .png
MAX_OUTPUT_PIXELS = 200_000_000  # a typo like --extend 0,0,10000%,0 must not exhaust memory

Box = tuple[int, int, int, int]
Extend = tuple[tuple[float, bool], ...]  # (value, is_percent) for left, top, right, bottom
Note = tuple[str, str]  # (kind, text): kinds "threshold", "empty", "full"

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
        "(default: 1024)",
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
            f"error: unexpected {type(err).__name__}: {first_line(err)} (INPAINTLAB_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
