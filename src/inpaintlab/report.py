"""`inpaintlab report metrics/eval.json`: the evaluation table `make run` ends with.

One Markdown pipe table (pastes straight into the README, still readable in a terminal):
a row per mask family ("all" last) with the model's PSNR next to each classical baseline's and
the margin over the better baseline, because "does learning beat OpenCV here?" is the question
the numbers exist to answer. Nested sections under "model" (e.g. "area_bins") get their own
tables. No torch import: this runs after every `make run` and must start fast.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from inpaintlab.errors import UserError, command
from inpaintlab.files import atomic_write_text

BASELINE_LABELS = {
    "telea": "Telea",
    "ns": "NS",
    "fsr": "FSR",
    "biharmonic": "biharmonic",
    "patchmatch": "PatchMatch",
}
PSNR, SSIM, ACCURACY, COUNT = "psnr_masked", "ssim", "accuracy", "n"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_metric_set(value: object) -> bool:
    """A leaf dict M ({"psnr_masked": ..., ...}) as opposed to a section of further dicts."""
    return isinstance(value, Mapping) and any(_is_number(v) for v in value.values())


def _ordered(keys: Sequence[str]) -> list[str]:
    """Keys in file order with "all" moved last: the summary row closes the table."""
    return [k for k in keys if k != "all"] + (["all"] if "all" in keys else [])


def _num(value: object, spec: str) -> str:
    if not _is_number(value):
        return "-"
    return f"{value:{spec}}"


def _get(node: object, key: str) -> Mapping[str, object]:
    value = node.get(key) if isinstance(node, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _margin(model: Mapping[str, object], baselines: Sequence[Mapping[str, object]]) -> str:
    """Model PSNR minus the best baseline PSNR, in dB; '-' when either side is unknown."""
    psnr = model.get(PSNR)
    scores = [b.get(PSNR) for b in baselines]
    scores = [s for s in scores if _is_number(s) and not math.isnan(s)]
    if not _is_number(psnr) or not scores:
        return "-"
    return f"{psnr - max(scores):+.2f}"


def _pipe_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Markdown pipe table, padded so it also reads as aligned text; numbers right-aligned."""
    widths = [max(3, len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        padded = [cells[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * widths[0]] + ["-" * (w - 1) + ":" for w in widths[1:]]
    return "\n".join([line(header), "| " + " | ".join(rule) + " |"] + [line(r) for r in rows])


def _section_table(
    first_column: str,
    model: Mapping[str, object],
    baselines: Mapping[str, Mapping[str, object]],
) -> str:
    """Table with a row per metric set directly under `model`."""
    names = list(baselines)
    header = [
        first_column,
        "model PSNR",
        *(f"{BASELINE_LABELS.get(n, n)} PSNR" for n in names),
        "margin (dB)",
        "model SSIM",
        "model accuracy",
        "n",
    ]
    rows = []
    for key in _ordered([k for k, v in model.items() if _is_metric_set(v)]):
        m = model[key]
        per_baseline = [_get(baselines[n], key) for n in names]
        rows.append(
            [
                str(key),
                _num(m.get(PSNR), ".2f"),
                *(_num(b.get(PSNR), ".2f") for b in per_baseline),
                _margin(m, per_baseline),
                _num(m.get(SSIM), ".4f"),
                _num(m.get(ACCURACY), ".4f"),
                _num(m.get(COUNT), "d" if isinstance(m.get(COUNT), int) else "g"),
            ]
        )
    return _pipe_table(header, rows)


def _tables(
    title: str,
    first_column: str,
    model: Mapping[str, object],
    baselines: Mapping[str, Mapping[str, object]],
) -> list[tuple[str, str]]:
    """(title, table) for this section, then for each nested section (area bins), depth first."""
    out: list[tuple[str, str]] = []
    if any(_is_metric_set(v) for v in model.values()):
        out.append((title, _section_table(first_column, model, baselines)))
    for key, value in model.items():
        if isinstance(value, Mapping) and not _is_metric_set(value):
            sub_title = f"{title} / {key}" if title else str(key)
            # area_bins -> {bin: M}: rows are bins; any other section (a bin) -> {family: M}
            label = "area bin" if key == "area_bins" else "mask family"
            sub_baselines = {n: _get(b, key) for n, b in baselines.items()}
            out.extend(_tables(sub_title, label, value, sub_baselines))
    return out


def _times(model: Mapping[str, object], baselines: Mapping[str, Mapping[str, object]]) -> str:
    """One line: milliseconds per image of each method (the "all" row), where recorded."""
    pairs = [("model", _get(model, "all").get("ms"))]
    pairs += [(BASELINE_LABELS.get(n, n), _get(b, "all").get("ms")) for n, b in baselines.items()]
    shown = [f"{name} {value:.0f}" for name, value in pairs if _is_number(value)]
    return "time per image (ms): " + ", ".join(shown) if shown else ""


def _full_size_parts(metrics: Mapping[str, object]) -> list[str]:
    """A table per full-size resolution: what `predict` gives users (the headline numbers)."""
    parts = []
    sections = _get(metrics, "full_size")
    for size in sorted(sections, key=lambda k: int(k) if str(k).isdigit() else 0):
        section = _get(sections, size)
        model, baselines = _get(section, "model"), _get(section, "baselines")
        if not model:
            continue
        baselines = {str(n): b for n, b in baselines.items() if isinstance(b, Mapping)}
        title = f"full size, {size}x{size} px, through predict ({section.get('n', '?')} images)"
        part = f"{title}:\n\n{_section_table('mask family', model, baselines)}"
        times = _times(model, baselines)
        parts.append(f"{part}\n\n{times}" if times else part)
    return parts


def format_table(metrics: Mapping[str, object]) -> str:
    """Render an eval.json dict as Markdown tables; ValueError if there is no "model" section.

    Full-size sections come first (what users get); then the training-size tables. The margin is
    always over the best classical method in the same row."""
    model = metrics.get("model") if isinstance(metrics, Mapping) else None
    if not isinstance(model, Mapping) or not model:
        raise ValueError('no "model" section: not an evaluation metrics file')
    baselines = {str(n): b for n, b in _get(metrics, "baselines").items() if isinstance(b, Mapping)}
    full = _full_size_parts(metrics)
    parts = list(full)
    for title, table in _tables("", "mask family", model, baselines):
        if full:
            title = f"at the training size / {title}" if title else "at the training size"
        parts.append(f"{title.replace('_', ' ')}:\n\n{table}" if title else table)
    if len(parts) == len(full):
        raise ValueError('the "model" section holds no metrics')
    return "\n\n".join(parts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inpaintlab report",
        description="Print the evaluation tables (model vs the classical baselines per mask family, "
        "full size through predict first) "
        "as Markdown, ready to paste into the README.",
    )
    parser.add_argument(
        "metrics",
        nargs="?",
        default="metrics/eval.json",
        help="evaluation metrics JSON (default: metrics/eval.json)",
    )
    parser.add_argument(
        "--readme",
        type=Path,
        help=f"also write the tables into this file, between {README_START} and {README_END} "
        "(make run does it for README.md)",
    )
    return parser


README_START, README_END = "<!-- RESULTS:START -->", "<!-- RESULTS:END -->"


def write_into(readme: Path, tables: str, source: str) -> None:
    """Replace what lies between the README's two markers with the tables (atomically)."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {str(readme)!r}: {exc.strerror or exc}") from None
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise UserError(f"{readme} has no {README_START} ... {README_END} block to write into")
    block = (
        f"{README_START}\n<!-- written by `inpaintlab report {source} --readme {readme}` -->\n\n"
        f"{tables}\n"
    )
    atomic_write_text(readme, text[:start] + block + text[end:])


@command
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for `inpaintlab report` and `python -m inpaintlab.report`."""
    args = build_parser().parse_args(argv)
    try:
        text = Path(args.metrics).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {args.metrics!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{args.metrics!r} is not UTF-8 text") from None
    try:
        table = format_table(json.loads(text))
    except (ValueError, RecursionError) as exc:  # invalid JSON, or not an eval metrics file
        raise UserError(f"{args.metrics!r}: {' '.join(str(exc).split())}") from None
    print(table)
    if args.readme is not None:
        write_into(args.readme, table, args.metrics)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
