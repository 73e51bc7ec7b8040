"""The prepare stage's fixed val/test masks: made in chunks by the worker pool and streamed into
their .npz, so no mask array is ever held whole. With the cache, each chunk is also kept there
(compressed), keyed by what made it: a rerun after adding photos makes only the rows of the new
images (and the last, partial chunk), the other chunks are read back."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inpaintlab.data import masks
from inpaintlab.data.masks import EVAL_FAMILIES, make_masks
from inpaintlab.data.prepare_jobs import write_file
from inpaintlab.data.streaming import Chunked, bounded_map, write_npz

CHUNK_BYTES = 4 << 20  # masks per chunk of work: about 4 MB of them
# What the masks are made with: the generators' code, their parameters (the dataclass reprs,
# wherever the numbers come from) and the libraries they draw with.
GENERATORS = hashlib.sha256(
    Path(masks.__file__).read_bytes()
    + repr(sorted(EVAL_FAMILIES.items())).encode()
    + f"numpy {np.__version__} opencv {cv2.__version__}".encode()
).hexdigest()[:16]


@dataclass(frozen=True)
class MaskRows:
    """Rows start .. stop - 1 of a fixed mask array. Test: every row of `families[0]`, row i
    from rng [seed, i] (make_masks). Val (cycle): row i of family families[i % len] from
    rng [seed + i, 0]. cache: a folder for the chunk (None: no cache)."""

    families: tuple[str, ...]
    size: int
    seed: int
    start: int
    stop: int
    cycle: bool = False
    cache: str | None = None

    def key(self) -> str:
        what = [self.families, self.size, self.seed, self.start, self.stop, self.cycle]
        return hashlib.sha256(json.dumps([*what, GENERATORS]).encode()).hexdigest()[:32]


def make_mask_rows(rows: MaskRows) -> np.ndarray:
    """(stop - start, size, size) uint8, from the cache when it has them."""
    path = Path(rows.cache) / f"{rows.key()}.npz" if rows.cache else None
    if path is not None:
        try:
            with np.load(path) as stored:
                return stored["rows"]
        except (OSError, ValueError, KeyError):
            pass
    s, count = rows.size, rows.stop - rows.start
    if not rows.cycle:
        generator = EVAL_FAMILIES[rows.families[0]]
        out = make_masks(generator, count, s, s, rows.seed, rows.start).astype(np.uint8)
    else:
        out = np.zeros((count, s, s), np.uint8)
        for j, i in enumerate(range(rows.start, rows.stop)):
            family = EVAL_FAMILIES[rows.families[i % len(rows.families)]]
            out[j] = make_masks(family, 1, s, s, rows.seed + i)[0]
    if path is not None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, rows=out)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, buffer.getvalue())
    return out


class MaskWriter:
    """Writes the mask files of one prepare, through its pool and cache; `used` collects the
    cache keys of the chunks (what prune_cache keeps)."""

    def __init__(
        self, pool: ProcessPoolExecutor | None = None, workers: int = 1, cache: Path | None = None
    ) -> None:
        self.pool, self.workers = pool, max(1, workers)
        self.cache = str(cache / "masks") if cache is not None else None
        self.used: set[str] = set()

    def chunks(
        self, families: Sequence[str], count: int, size: int, seed: int, cycle: bool
    ) -> Iterator[np.ndarray]:
        """The rows of one mask array, chunk by chunk, in order (made as they are written)."""
        step = max(1, CHUNK_BYTES // (size * size))
        specs = [
            MaskRows(
                tuple(families), size, seed, start, min(count, start + step), cycle, self.cache
            )
            for start in range(0, count, step)
        ]
        self.used.update(spec.key() for spec in specs)
        return bounded_map(self.pool, make_mask_rows, specs, window=2 * self.workers)

    def test_masks(
        self,
        prepared_dir: Path,
        families: Sequence[str],
        count: int,
        size: int,
        seed: int,
        filename: str = "masks_test.npz",
    ) -> None:
        """prepared_dir/<filename>: per family, `count` fixed (size x size) uint8 masks, the
        same for every model and baseline evaluated on this test split (mask i: rng [seed, i])."""
        shape = (count, size, size)
        write_npz(
            prepared_dir / filename,
            {
                f: Chunked(shape, np.uint8, self.chunks([f], count, size, seed, False))
                for f in families
            },
        )

    def val_masks(
        self, prepared_dir: Path, families: Sequence[str], count: int, size: int, seed: int
    ) -> None:
        """prepared_dir/masks_val.npz: val image i gets family i % len(families), rng [seed + i, 0]."""
        write_npz(
            prepared_dir / "masks_val.npz",
            {
                "mask": Chunked(
                    (count, size, size), np.uint8, self.chunks(families, count, size, seed, True)
                ),
                "family": np.array([families[i % len(families)] for i in range(count)]),
            },
        )


def write_test_masks(
    prepared_dir: Path,
    families: Sequence[str],
    count: int,
    size: int,
    seed: int,
    filename: str = "masks_test.npz",
) -> None:
    """MaskWriter.test_masks in this process, without a cache (benchmarks, tests)."""
    MaskWriter().test_masks(prepared_dir, families, count, size, seed, filename)
