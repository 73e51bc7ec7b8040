"""The `inpaintlab` command. Subcommands import their module lazily, so `inpaintlab predict`
starts without torch, Lightning or MLflow."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from inpaintlab.errors import EXIT_USAGE, UserError, command

# subcommand -> module whose main(argv) -> int handles it
DELEGATES = {
    "predict": "inpaintlab.predict",
    "check-metrics": "inpaintlab.check_metrics",
    "report": "inpaintlab.report",
    "serve": "inpaintlab.serve.command",
}

USAGE = """usage: inpaintlab <command> [options]

commands:
  data synth      write the built-in synthetic landscape dataset (default data/raw)
  data photos     copy the real photos shipped in installed wheels (default data/raw)
  predict         inpaint or outpaint images with an exported model (.onnx or .pt)
  check-metrics   compare metrics to a baseline; non-zero exit on a regression
  report          print the evaluation table of metrics/eval.json
  serve           try the model in a browser; HTTP API (POST /api/inpaint)

`inpaintlab <command> --help` for a command's options."""


@command
def data_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="inpaintlab data")
    sub = parser.add_subparsers(dest="action", required=True)
    synth = sub.add_parser("synth", help="write the built-in synthetic landscape dataset")
    synth.add_argument("--out", default="data/raw", help="output folder (default data/raw)")
    synth.add_argument("--count", type=int, default=1000, help="number of images (default 1000)")
    synth.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    synth.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    photos = sub.add_parser(
        "photos", help="copy the real photos that ship inside installed wheels (12 photos)"
    )
    photos.add_argument("--out", default="data/raw", help="default data/raw")
    photos.add_argument(
        "--colour-only", action="store_true", help="leave out the 4 grayscale photos"
    )
    args = parser.parse_args(argv)
    if args.action == "photos":
        from inpaintlab.data.bundled import copy_photos, find_photos

        _, missing = find_photos()
        for line in missing:
            print(f"note: missing {line}", file=sys.stderr)
        written = copy_photos(Path(args.out), not args.colour_only)
        if not written:
            raise UserError("no bundled photos found (scikit-image is not installed?)")
        print(f"copied {len(written)} photos to {args.out}")
        return 0

    from inpaintlab.data.synthetic import write_dataset

    try:
        paths = write_dataset(
            args.out, count=args.count, size=args.size, seed=args.seed, progress=not args.quiet
        )
    except (ValueError, OSError) as err:
        raise UserError(str(err)) from None
    print(f"wrote {len(paths)} images of {args.size}x{args.size} to {args.out}")
    return 0


@command
def main(argv: list[str] | None = None) -> int:
    """`inpaintlab`: the subcommand's exit code (errors.py: the policy of every command)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else EXIT_USAGE
    name, rest = argv[0], argv[1:]
    if name == "data":
        return data_main(rest)
    if name in ("-V", "--version"):
        from inpaintlab import __version__

        print(f"inpaintlab {__version__}")
        return 0
    if name not in DELEGATES:
        print(f"error: unknown command {name!r}\n\n{USAGE}", file=sys.stderr)
        return EXIT_USAGE
    return int(importlib.import_module(DELEGATES[name]).main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
