"""CI regression gate for metric files: `inpaintlab check-metrics --baseline F --current F`.

`dvc metrics diff` shows what moved but always exits 0; this compares two JSON metric files
(e.g. the committed `metrics/eval.json` and a fresh one) and exits non-zero when a gated metric got
worse by more than the tolerance. Which metrics count and which way is better is the table in
metric_names.py, not a guess from the name. Kept free of torch and numpy so CI pays no import
cost.

Exit codes (errors.py, as every command): 0 no regression, 1 regression, 2 bad arguments or an
unreadable file.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from inpaintlab.errors import EXIT_FAILED, EXIT_OK, UserError, command
from inpaintlab.metric_names import DIRECTIONS, HIGHER, INFORMATIONAL, LOWER

DEFAULT_REL_TOLERANCE = 0.01
GATED_PREFIX = "model"
MOVE_EPSILON = 1e-12  # smaller changes are float noise, not movement
EXIT_REGRESSION = EXIT_FAILED


def _names(direction: int) -> str:
    return ", ".join(name for name, d in DIRECTIONS.items() if d == direction)


DESCRIPTION = f"""\
Compare two JSON metric files and fail (exit 1) when a gated metric got worse beyond tolerance.

Nested objects are flattened to dotted keys (model.box.psnr_masked); only numeric leaves count.
Which way is better comes from the metric's name (the leaf of its key), by an explicit table
(inpaintlab/metric_names.py):
  higher is better: {_names(HIGHER)}
  lower is better:  {_names(LOWER)}
  informational:    {", ".join(sorted(INFORMATIONAL))} (shown when they change, never fail;
                    a changed 'n' prints a warning because it means a different test set)
A metric name outside the table is shown when it changes and never gated (a note lists them).
By default only keys under 'model' and 'full_size.<size>.model' are gated (the classical
baselines are context); --all gates every metric of the table. A gated metric missing from
--current, or NaN there, is a regression.

Tolerance: a metric fails when it worsens by more than
    allowed = max(TOLERANCE * |baseline value|, ABS_TOLERANCE)
TOLERANCE is relative, so one number works for dB and for fractions alike (0.01 allows
0.25 dB on 25 dB PSNR, 0.009 on 0.9 SSIM). ABS_TOLERANCE is a floor in the metric's own
units, for metrics whose baseline is near zero (l1). A bare number applies to every metric;
NAME=VALUE applies to metrics whose name has the word NAME and overrides the bare number
for them (repeatable; e.g. --abs-tolerance l1=0.001 --abs-tolerance psnr=0.2).

Statuses: better, ok (worse within tolerance), WORSE, MISSING (gated, fails the gate),
worse/missing (not gated), new, info (no direction). Exit: 0 pass, 1 regression, 2 usage error.
"""


@dataclass(frozen=True)
class Row:
    """One metric's comparison; `regressed` is what the exit code is made of."""

    key: str
    baseline: float | None
    current: float | None
    status: str
    regressed: bool = False
    allowed: float | None = None

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline


def flatten(data: object, prefix: str = "") -> dict[str, float]:
    """Dotted key -> numeric leaf; strings, lists, booleans and nulls are not metrics."""
    out: dict[str, float] = {}
    if isinstance(data, Mapping):
        for name, value in data.items():
            key = f"{prefix}.{name}" if prefix else str(name)
            if isinstance(value, Mapping):
                out.update(flatten(value, key))
            elif isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = value
    return out


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _words(key: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", _leaf(key).lower()) if w]


def direction(key: str) -> int:
    """+1 higher is better, -1 lower is better, 0 informational or not in the table."""
    return DIRECTIONS.get(_leaf(key), 0)


def unknown_names(keys: Sequence[str], gate_all: bool) -> list[str]:
    """Metric names in the gated part of a file that the table does not know (never gated)."""
    names = {_leaf(k) for k in keys if is_gated(k, gate_all)}
    return sorted(names - set(DIRECTIONS) - INFORMATIONAL)


# the model's own numbers: at the training size, and at each full size (what predict gives users)
GATED_PATTERN = re.compile(rf"^({GATED_PREFIX}|full_size\.[^.]+\.{GATED_PREFIX})(\.|$)")


def is_gated(key: str, gate_all: bool) -> bool:
    return gate_all or GATED_PATTERN.match(key) is not None


def parse_abs_tolerances(values: Sequence[str]) -> tuple[float, dict[str, float]]:
    """`--abs-tolerance` values -> (floor for every metric, {word: floor})."""
    default = 0.0
    by_word: dict[str, float] = {}
    for raw in values:
        name, sep, number = raw.rpartition("=")
        value = _non_negative(number, "--abs-tolerance")
        if sep:
            word = name.strip().lower()
            if not word:
                raise UserError(f"--abs-tolerance {raw!r}: expected VALUE or NAME=VALUE")
            by_word[word] = value
        else:
            default = value
    return default, by_word


def _non_negative(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{option} {text!r}: not a number") from None
    if not math.isfinite(value) or value < 0:
        raise UserError(f"{option} {text!r}: must be a finite number >= 0")
    return value


def allowed_worsening(
    key: str, baseline: float, rel: float, abs_default: float, abs_by_word: Mapping[str, float]
) -> float:
    words = _words(key)
    floors = [v for w, v in abs_by_word.items() if w in words]
    floor = max(floors) if floors else abs_default
    return max(rel * abs(baseline), floor)


def compare(
    baseline: Mapping[str, float],
    current: Mapping[str, float],
    *,
    rel: float = DEFAULT_REL_TOLERANCE,
    abs_default: float = 0.0,
    abs_by_word: Mapping[str, float] | None = None,
    gate_all: bool = False,
) -> list[Row]:
    """Rows for every metric that moved, went missing or appeared, in baseline order."""
    abs_by_word = abs_by_word or {}
    rows: list[Row] = []
    for key, base in baseline.items():
        gated = is_gated(key, gate_all)
        sign = direction(key)
        if key not in current:
            fails = gated and sign != 0
            rows.append(Row(key, base, None, "MISSING" if fails else "missing", fails))
            continue
        cur = current[key]
        if math.isnan(base) and math.isnan(cur):
            continue
        if math.isnan(cur) and sign != 0:
            rows.append(Row(key, base, cur, "WORSE" if gated else "worse", gated))
            continue
        if sign == 0 or math.isnan(base):
            if math.isnan(base) or math.isnan(cur) or abs(cur - base) > MOVE_EPSILON:
                rows.append(Row(key, base, cur, "info"))
            continue
        worsening = sign * (base - cur)
        if math.isnan(worsening) or abs(worsening) <= MOVE_EPSILON:
            continue  # unchanged (or inf vs inf)
        if worsening < 0:
            rows.append(Row(key, base, cur, "better"))
            continue
        allowed = allowed_worsening(key, base, rel, abs_default, abs_by_word)
        if worsening <= allowed + MOVE_EPSILON:
            rows.append(Row(key, base, cur, "ok", allowed=allowed))
        else:
            rows.append(Row(key, base, cur, "WORSE" if gated else "worse", gated, allowed))
    rows.extend(
        Row(key, None, value, "new") for key, value in current.items() if key not in baseline
    )
    return rows


def count_compared(
    baseline: Mapping[str, float], current: Mapping[str, float], gate_all: bool
) -> int:
    """Gated metrics with a direction present in both files: what "N metrics compared" counts."""
    return sum(1 for k in baseline if k in current and is_gated(k, gate_all) and direction(k) != 0)


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not signed:
        return str(value)
    return f"{value:+.6g}" if signed else f"{value:.6g}"


def format_rows(rows: Sequence[Row]) -> str:
    """Aligned text table: metric, baseline, current, delta, status."""
    header = ("metric", "baseline", "current", "delta", "status")
    cells = [header] + [
        (r.key, _fmt(r.baseline), _fmt(r.current), _fmt(r.delta, signed=True), r.status)
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = []
    for c in cells:
        parts = [c[0].ljust(widths[0])]
        parts += [c[i].rjust(widths[i]) for i in (1, 2, 3)]
        parts.append(c[4])
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _n_warnings(rows: Sequence[Row], gate_all: bool) -> Iterator[str]:
    for r in rows:
        if _leaf(r.key) == "n" and r.status == "info" and is_gated(r.key, gate_all):
            yield (
                f"warning: {r.key} changed {_fmt(r.baseline)} -> {_fmt(r.current)}: "
                "a different test set, the comparison is not like for like"
            )


def _regression_lines(rows: Sequence[Row]) -> Iterator[str]:
    for r in rows:
        if not r.regressed:
            continue
        if r.current is None:
            yield f"regressed: {r.key} missing from current"
        elif r.allowed is None:
            yield f"regressed: {r.key} is {_fmt(r.current)} (baseline {_fmt(r.baseline)})"
        else:
            worse_by = abs(r.current - r.baseline) if r.baseline is not None else float("nan")
            yield (
                f"regressed: {r.key} {_fmt(r.baseline)} -> {_fmt(r.current)} "
                f"(worse by {worse_by:.4g}, allowed {r.allowed:.4g})"
            )


def load_metrics(path: str) -> dict[str, float]:
    """Read and flatten one metric file; any problem becomes a one-line UserError."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read metrics file {path!r}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        msg = " ".join(str(exc).split())
        raise UserError(f"metrics file {path!r} is not valid JSON: {msg}") from None
    if not isinstance(data, dict):
        raise UserError(f"metrics file {path!r}: expected a JSON object at the top level")
    return flatten(data)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inpaintlab check-metrics",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--baseline", required=True, metavar="F", help="reference metrics JSON")
    parser.add_argument("--current", required=True, metavar="F", help="new metrics JSON")
    parser.add_argument(
        "--tolerance",
        default=str(DEFAULT_REL_TOLERANCE),
        metavar="X",
        help=f"allowed relative worsening, a fraction of the baseline value "
        f"(default {DEFAULT_REL_TOLERANCE:g} = 1%%; 0 = any worsening fails)",
    )
    parser.add_argument(
        "--abs-tolerance",
        action="append",
        default=[],
        metavar="[NAME=]X",
        help="absolute floor for the allowed worsening, in the metric's units (default 0); "
        "repeatable",
    )
    parser.add_argument(
        "--all",
        dest="gate_all",
        action="store_true",
        help="gate every metric, not only those under 'model'",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    rel = _non_negative(args.tolerance, "--tolerance")
    abs_default, abs_by_word = parse_abs_tolerances(args.abs_tolerance)
    baseline = load_metrics(args.baseline)
    current = load_metrics(args.current)
    compared = count_compared(baseline, current, args.gate_all)
    gated_in_baseline = [k for k in baseline if is_gated(k, args.gate_all) and direction(k) != 0]
    if not gated_in_baseline:
        scope = "any metric" if args.gate_all else f"'{GATED_PREFIX}' metrics"
        raise UserError(
            f"baseline {args.baseline!r} has no {scope} with a known direction: nothing to gate"
        )
    unknown = unknown_names(list(baseline), args.gate_all)
    if unknown:
        print(f"note: not gated, no direction in inpaintlab/metric_names.py: {', '.join(unknown)}")
    rows = compare(
        baseline,
        current,
        rel=rel,
        abs_default=abs_default,
        abs_by_word=abs_by_word,
        gate_all=args.gate_all,
    )
    print(format_rows(rows) if rows else "no metric changed")
    for line in _n_warnings(rows, args.gate_all):
        print(line)
    regressed = [r for r in rows if r.regressed]
    if regressed:
        for line in _regression_lines(regressed):
            print(line)
        print(f"FAIL: {len(regressed)} metrics regressed beyond tolerance")
        return EXIT_REGRESSION
    print(f"OK: no regression ({compared} metrics compared)")
    return EXIT_OK


@command
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for `inpaintlab check-metrics` and `python -m inpaintlab.check_metrics`."""
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
