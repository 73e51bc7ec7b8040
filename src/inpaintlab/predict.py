"""`inpaintlab predict`: fill holes in photos, or extend them, with an exported model.

    inpaintlab predict --model models/export/model.onnx --image in.jpg --mask m.png --out out.png
    inpaintlab predict --model M --input-dir photos/ --extend 0,0,50%,0 --output-dir wider/

This module is the command line: arguments, progress and messages. The work lives in
`inpaintlab.inference` (shared with evaluate, the benchmarks and `serve`): the model runtime, the
strategy for images of any size, boxes and extensions (`regions.py`), one job and the plan for a
folder (`jobs.py`).

Only generated pixels are ever written: every pixel outside the mask is bit-exact in the output
(exactly so when it is saved as PNG), for any image size.

Outpainting (`--extend L,T,R,B`, pixels or % of the original width for L/R and height for T/B)
grows the canvas; see `inpaintlab.inference.strategy.outpaint`.

Errors are one `error: ...` line on stderr, with the exit codes of every command (errors.py: 2 for
bad input, 1 when the model fails or some inputs of a folder were skipped); `note: ...` lines
report what was done with odd input (thresholded masks, empty masks).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inpaintlab.errors import UserError, command
from inpaintlab.inference import load_model
from inpaintlab.inference.jobs import (
    Job,
    check_output,
    output_name,
    plan_folder,
    run_job,
    symlink_on_the_way,
)
from inpaintlab.inference.regions import parse_box, parse_extend
from inpaintlab.inference.runtime import SIZE_MULTIPLE

# --------------------------------------------------------------------------- arguments


def _argument(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A parser's ValueError as argparse's ArgumentTypeError, whose message argparse shows."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = parse.__name__
    return convert


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
        "--box",
        type=_argument(parse_box),
        metavar="X,Y,W,H",
        help="generate this rectangle (pixels)",
    )
    region.add_argument(
        "--extend",
        type=_argument(parse_extend),
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


def _run_folder(args: argparse.Namespace, model_path: Path) -> int:
    plan = plan_folder(
        args.input_dir,
        args.output_dir,
        mask=args.mask,
        mask_dir=args.mask_dir,
        box=args.box,
        extend=args.extend,
        overwrite=args.overwrite,
    )
    jobs, skipped = plan.jobs, plan.skipped
    for reason in skipped:
        print(f"skipped: {reason}", file=sys.stderr)
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    written = 0
    model = load_model(model_path) if jobs else None
    from tqdm import tqdm

    notes: dict[str, int] = {}
    with tqdm(
        jobs, desc="predict", unit="img", file=sys.stderr, disable=args.quiet or not jobs
    ) as bar:
        for job in bar:
            link = symlink_on_the_way(job.out, args.output_dir)  # again: it may have appeared
            if link is not None:
                skipped.append(
                    f"{job.image}: its output would be written through the symlink {link}"
                )
                bar.write(f"skipped: {skipped[-1]}", file=sys.stderr)
                continue
            try:  # one bad file (or the model failing on it) must not stop the batch
                _, job_notes = run_job(job, model, args.threshold, args.max_side)
            except UserError as err:
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
    check_output(out, args.overwrite)
    if not args.image.is_file():
        raise UserError(
            f"cannot read {args.image}: "
            + ("is a directory" if args.image.is_dir() else "no such file")
        )
    if args.mask is not None and not args.mask.is_file():
        raise UserError(f"cannot read mask {args.mask}: no such file")
    model = load_model(model_path)
    job = Job(image=args.image, out=out, mask=args.mask, box=args.box, extend=args.extend)
    (width, height), notes = run_job(job, model, args.threshold, args.max_side)
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


@command
def main(argv: list[str] | None = None) -> int:
    """`inpaintlab predict`; returns the exit code (errors.py: the policy of every command)."""
    parser = build_parser()
    args = parser.parse_args(_attach_negative_values(sys.argv[1:] if argv is None else argv))
    if args.input_dir is not None and args.output_dir is None:
        parser.error("--input-dir needs --output-dir")
    if args.mask_dir is not None and args.input_dir is None:
        parser.error("--mask-dir needs --input-dir (use --mask with --image)")
    model_path: Path = args.model
    if model_path.suffix.lower() not in (".onnx", ".pt"):
        raise UserError(
            f"unsupported model {model_path}: expected a .onnx or a TorchScript .pt file"
        )
    if not model_path.is_file():
        raise UserError(f"model {model_path} not found")
    if args.input_dir is not None:
        return _run_folder(args, model_path)
    return _run_single(args, model_path)


if __name__ == "__main__":
    sys.exit(main())
