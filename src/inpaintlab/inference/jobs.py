"""Jobs of `inpaintlab predict`: one image in, one file out, and the plan for a folder of them.

`run_job` loads an image and its mask (a mask file, a box or an extension), fills or extends it
through `strategy.inpaint` / `outpaint` and writes the result atomically. `plan_folder` turns an
input folder (and a mask folder) into jobs: masks matched by name, outputs under the same
relative names, and whatever must be skipped with the reason (missing masks, existing outputs,
symlinks that lead out of a folder).

Errors the user can fix are UserError, a model that fails is ModelError (errors.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
from inpaintlab.errors import UserError
from inpaintlab.inference.regions import Box, Extend, box_mask, resolve_extend
from inpaintlab.inference.runtime import Model
from inpaintlab.inference.strategy import inpaint, outpaint

KEEP_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg"})  # other inputs are written as .png
MAX_OUTPUT_PIXELS = 200_000_000  # a typo like --extend 0,0,10000%,0 must not exhaust memory

Note = tuple[str, str]  # (kind, text): kinds "threshold", "empty", "full"


@dataclass
class Job:
    """One image to process; mask is a path, a box, an extension or None (--mask-dir miss)."""

    image: Path
    out: Path
    mask: Path | None = None
    box: Box | None = None
    extend: Extend | None = None


def _load_hole(
    job: Job, height: int, width: int, threshold: float
) -> tuple[np.ndarray, list[Note]]:
    """The job's HxW bool mask (from its box or mask file) and notes about it."""
    if job.box is not None:
        return box_mask(height, width, job.box), []
    assert job.mask is not None
    try:
        values, was_binary = load_mask(job.mask, threshold)
    except ImageLoadError as err:
        raise UserError(str(err).replace("cannot read", "cannot read mask", 1)) from None
    if values.shape != (height, width):
        raise UserError(
            f"mask {job.mask} is {values.shape[1]}x{values.shape[0]} but image {job.image} is {width}x{height}"
        )
    notes: list[Note] = []
    if not was_binary:
        notes.append(
            (
                "threshold",
                f"mask {job.mask} is not binary; thresholded at {threshold:g} (>= {threshold:g} of white = generate)",
            )
        )
    return values > 0, notes


def run_job(
    job: Job, model: Model, threshold: float, max_side: int | None
) -> tuple[tuple[int, int], list[Note]]:
    """Run one job and write its output; returns ((width, height), notes as (kind, text))."""
    notes: list[Note] = []
    try:
        image = load_rgb(job.image)
    except ImageLoadError as err:
        raise UserError(str(err)) from None
    height, width = image.shape[:2]
    if job.extend is not None:
        amounts = resolve_extend(job.extend, height, width)
        new_w, new_h = width + amounts[0] + amounts[2], height + amounts[1] + amounts[3]
        if new_w * new_h > MAX_OUTPUT_PIXELS:
            raise UserError(
                f"--extend would make {job.image} {new_w}x{new_h} pixels; that is too large"
            )
        if not any(amounts):
            notes.append(
                ("empty", f"nothing to extend for {job.image}; the output is a copy of the input")
            )
        result = outpaint(image, amounts, model.run, model.image_size, max_side)
    else:
        mask, mask_notes = _load_hole(job, height, width, threshold)
        notes += mask_notes
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
        raise UserError(str(err)) from None
    return (result.shape[1], result.shape[0]), notes


def output_name(relative: Path) -> Path:
    return relative if relative.suffix.lower() in KEEP_EXTENSIONS else relative.with_suffix(".png")


def check_output(out: Path, overwrite: bool) -> None:
    """UserError unless out can be written (a known extension, not a folder, new or overwrite)."""
    if out.suffix.lower() not in SAVE_EXTENSIONS:
        raise UserError(
            f"cannot write {out}: unsupported extension (use one of {', '.join(sorted(SAVE_EXTENSIONS))})"
        )
    if out.is_dir():
        raise UserError(f"cannot write {out}: is a directory")
    if out.exists() and not overwrite:
        raise UserError(f"{out} exists; pass --overwrite to replace it")


# --------------------------------------------------------------------------- folders


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _escapes(path: Path, folder: Path) -> Path | None:
    """Where path really is, when a symlink takes it outside folder; None when it stays in."""
    return None if _inside(path, folder) else path.resolve()


def symlink_on_the_way(out: Path, output_dir: Path) -> Path | None:
    """The first symlink among out's folders below output_dir, or out itself: writing there
    would write through the link (output_dir itself is the user's choice and may be one)."""
    current = output_dir
    for part in out.relative_to(output_dir).parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def mask_finder(mask_dir: Path, same_dir: bool) -> Callable[[Path], Path | None]:
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


@dataclass
class FolderPlan:
    """What a folder run will do: the jobs, the inputs skipped with their reason (these make
    the run's exit code 1) and notes (inputs skipped because a symlink leads out of a folder)."""

    jobs: list[Job] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan_folder(
    input_dir: Path,
    output_dir: Path,
    *,
    mask: Path | None = None,
    mask_dir: Path | None = None,
    box: Box | None = None,
    extend: Extend | None = None,
    overwrite: bool = False,
) -> FolderPlan:
    """Jobs for every image under input_dir (recursive), with one mask source for all of them
    (mask, box or extend) or a mask per image from mask_dir."""
    if not input_dir.is_dir():
        raise UserError(f"input folder {input_dir} not found")
    if output_dir.exists() and input_dir.resolve() == output_dir.resolve():
        raise UserError("--output-dir must differ from --input-dir (inputs would be replaced)")
    if mask_dir is not None and not mask_dir.is_dir():
        raise UserError(f"mask folder {mask_dir} not found")
    if mask is not None and not mask.is_file():
        raise UserError(f"cannot read mask {mask}: no such file")
    same_dir = mask_dir is not None and mask_dir.resolve() == input_dir.resolve()
    find_mask = mask_finder(mask_dir, same_dir) if mask_dir is not None else None
    images = [p for p in list_images(input_dir) if not _inside(p, output_dir)]
    if same_dir:
        images = [p for p in images if not p.stem.endswith("_mask")]
    if not images:
        raise UserError(f"no image files in {input_dir}")
    plan, claimed = FolderPlan(), {}
    for path in images:
        relative = path.relative_to(input_dir)
        target = _escapes(path, input_dir)
        if target is not None:
            plan.notes.append(f"skipped {path}: a symlink to {target}, outside {input_dir}")
            continue
        out = output_dir / output_name(relative)
        link = symlink_on_the_way(out, output_dir)
        if link is not None:
            plan.skipped.append(
                f"{path}: its output {out} would be written through the symlink {link}"
            )
            continue
        if out in claimed:
            plan.skipped.append(f"{path}: its output {out} is already written for {claimed[out]}")
            continue
        claimed[out] = path
        if out.exists() and not overwrite:
            plan.skipped.append(f"{out} exists; pass --overwrite to replace it")
            continue
        job = Job(image=path, out=out, mask=mask, box=box, extend=extend)
        if find_mask is not None:
            job.mask = find_mask(relative)
            if job.mask is None:
                plan.skipped.append(
                    f"{path}: no mask {relative.stem}.* or {relative.stem}_mask.* in {mask_dir}"
                )
                continue
            target = _escapes(job.mask, mask_dir)
            if target is not None:
                plan.notes.append(
                    f"skipped {path}: its mask {job.mask} is a symlink to {target}, outside {mask_dir}"
                )
                continue
        plan.jobs.append(job)
    return plan
