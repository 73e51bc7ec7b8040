"""Classical (non-learned) inpainting baselines on the same images and masks as the model.

`classical_inpaint(image, mask, method)` runs one of `BASELINE_NAMES`:

- ``telea``: OpenCV's fast marching method (Telea 2004); smooth, blurry fills, the usual reference.
- ``ns``: OpenCV's Navier-Stokes method (Bertalmio et al. 2001); isophotes carried into the hole.
- ``fsr``: opencv-contrib's frequency selective reconstruction (xphoto, FSR_FAST); fits a sparse
  Fourier model per block, so it continues textures and edges better than telea/ns.
- ``biharmonic``: scikit-image's biharmonic inpainting; the smoothest fill there is (exact on linear
  gradients), strong on small holes in smooth images, blurry on large ones.
- ``patchmatch``: PatchMatch (Barnes et al. 2009, pypatchmatch); copies patches from the known
  area, the strongest classical method for texture, with a fixed seed so reruns are identical.

Every method sees only the known pixels: the hole is zeroed before the call, as the model sees it
(cv2.inpaint reads some hidden pixels of holes that touch the image border; <= 0.01 dB either way on
the evaluation masks). The known pixels come back bit-exact: the fill is composited into the input
at the end (FSR moves them by up to 1). A mask without holes returns a copy of the image; a mask
without known pixels gives mid-grey (no method has anything to go on, and cv2.inpaint would return
the hidden pixels unchanged). skimage and patchmatch are imported on first
use, so importing this module stays cheap (cv2 and numpy only, no torch).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np

BASELINE_NAMES = ("telea", "ns", "fsr", "biharmonic", "patchmatch")
SLOW_METHODS = frozenset({"fsr", "biharmonic", "patchmatch"})  # worth a process pool
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# The fill when nothing is known (an all-one mask).
MID_GREY = 128
# PatchMatch patch radius: patches of (2 * 3 + 1)^2 pixels, pypatchmatch's example setting.
PATCHMATCH_PATCH_SIZE = 3
PATCHMATCH_SEED = 0


def _cv2_inpaint(flag: int) -> Callable[[np.ndarray, np.ndarray, int], np.ndarray]:
    def fill(rgb: np.ndarray, hole: np.ndarray, radius: int) -> np.ndarray:
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        return cv2.inpaint(bgr, hole.astype(np.uint8), radius, flag)[..., ::-1]

    return fill


def _fsr(rgb: np.ndarray, hole: np.ndarray, radius: int) -> np.ndarray:
    """opencv-contrib xphoto FSR_FAST. It wants 8-bit BGR (it works in YCrCb internally) and a mask
    that is non-zero where the pixel is KNOWN, the opposite of cv2.inpaint; it writes into dst and
    moves known pixels by up to 1 (colour round trip), which the composite undoes."""
    del radius  # telea/ns only
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    known = (~hole).astype(np.uint8)
    dst = np.zeros_like(bgr)
    cv2.xphoto.inpaint(bgr, known, dst, cv2.xphoto.INPAINT_FSR_FAST)
    return dst[..., ::-1]


def _biharmonic(rgb: np.ndarray, hole: np.ndarray, radius: int) -> np.ndarray:
    """scikit-image inpaint_biharmonic: solves the biharmonic equation in the hole (float in [0, 1]
    for uint8 input), rounded back to uint8."""
    del radius
    from skimage.restoration import inpaint_biharmonic

    filled = inpaint_biharmonic(rgb, hole, channel_axis=-1)
    return (np.clip(filled, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _patchmatch(rgb: np.ndarray, hole: np.ndarray, radius: int) -> np.ndarray:
    """pypatchmatch: mask non-zero = hole (like cv2.inpaint), any channel order. The native code
    keeps one global seed, set before every call so the same input always gives the same fill."""
    del radius
    from patchmatch import patch_match

    patch_match.set_verbose(False)
    patch_match.set_random_seed(PATCHMATCH_SEED)
    return patch_match.inpaint(rgb, hole.astype(np.uint8), patch_size=PATCHMATCH_PATCH_SIZE)


# name -> fill(rgb uint8 with the hole zeroed, hole bool HxW, radius) -> HxWx3 uint8 RGB (raw fill).
BASELINES: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "telea": _cv2_inpaint(cv2.INPAINT_TELEA),
    "ns": _cv2_inpaint(cv2.INPAINT_NS),
    "fsr": _fsr,
    "biharmonic": _biharmonic,
    "patchmatch": _patchmatch,
}
assert tuple(BASELINES) == BASELINE_NAMES


def classical_inpaint(
    image: np.ndarray, mask: np.ndarray, method: str, radius: int = 3
) -> np.ndarray:
    """image HxWx3 uint8 RGB, mask HxW (1 = fill) -> HxWx3 uint8 RGB, known pixels unchanged.

    `method` is one of BASELINE_NAMES; `radius` is the neighbourhood of telea and ns (the others
    ignore it)."""
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}: choose one of {', '.join(BASELINE_NAMES)}")
    image = np.asarray(image)
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be HxWx3 uint8, got {image.shape} {image.dtype}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask must be HxW {image.shape[:2]}, got {mask.shape}")
    hole = mask > 0.5
    if not hole.any():
        return image.copy()
    if hole.all():
        return np.full_like(image, MID_GREY)
    visible = np.where(hole[..., None], np.uint8(0), image)
    filled = BASELINES[method](visible, hole, radius)
    return np.where(hole[..., None], filled, image)


def _timed_inpaint(args: tuple[np.ndarray, np.ndarray, str, int]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    result = classical_inpaint(*args)
    return result, time.perf_counter() - start


def classical_inpaint_many(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    method: str,
    radius: int = 3,
    workers: int = 1,
) -> tuple[list[np.ndarray], float]:
    """classical_inpaint over image/mask pairs, in `workers` processes for the slow methods (FSR,
    biharmonic and PatchMatch take seconds at 512 px); returns the outputs in order and the mean
    compute time per image in milliseconds (each call timed where it runs, so the figure does
    not depend on the number of workers). The outputs do not depend on `workers` either."""
    jobs = [(image, mask, method, radius) for image, mask in zip(images, masks, strict=True)]
    if workers > 1 and len(jobs) > 1 and method in SLOW_METHODS:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            done = list(
                pool.map(_timed_inpaint, jobs, chunksize=max(1, len(jobs) // (4 * workers)))
            )
    else:
        done = [_timed_inpaint(job) for job in jobs]
    outputs = [result for result, _ in done]
    return outputs, 1000.0 * sum(seconds for _, seconds in done) / max(1, len(done))
