"""Bounded-memory building blocks of the prepare stage: a process pool fed a few chunks of work
at a time (never the whole folder's), and an .npz written chunk by chunk."""

from __future__ import annotations

import multiprocessing
import signal
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

T = TypeVar("T")
R = TypeVar("R")

# A fixed member timestamp: the same arrays give the same bytes (np.savez stamps the current
# time, so two identical prepares gave two different data/prepared hashes for DVC).
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to report, in one line
    cv2.setNumThreads(1)  # the pool is the parallelism: one thread per worker


def make_pool(workers: int) -> ProcessPoolExecutor | None:
    """`workers` spawned processes (not forked: the parent may hold threads and locks), or None
    for 1: the work then runs in this process."""
    if workers <= 1:
        return None
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker
    )


def bounded_map(
    pool: ProcessPoolExecutor | None,
    fn: Callable[[T], R],
    items: Iterable[T],
    window: int,
    ordered: bool = True,
) -> Iterator[R]:
    """fn over items, at most `window` items submitted and not yet consumed, so neither the
    inputs nor the results pile up in memory. ordered=False yields in completion order (a slow
    item does not hold the others back). Without a pool: a plain lazy map."""
    if pool is None:
        yield from map(fn, items)
        return
    queue: deque[Future[R]] = deque()
    running: set[Future[R]] = set()
    try:
        for item in items:
            future = pool.submit(fn, item)
            if ordered:
                queue.append(future)
                if len(queue) >= window:
                    yield queue.popleft().result()
            else:
                running.add(future)
                if len(running) >= window:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
        while queue:
            yield queue.popleft().result()
        for future in list(running):
            yield future.result()
    finally:
        for future in (*queue, *running):
            future.cancel()


@dataclass(frozen=True)
class Chunked:
    """An array given as consecutive chunks along its first axis (never held whole)."""

    shape: tuple[int, ...]
    dtype: Any
    chunks: Iterable[np.ndarray]


def write_npz(path: Path, members: Mapping[str, np.ndarray | Chunked]) -> None:
    """What np.savez_compressed writes (np.load reads it the same), with Chunked members
    streamed in and a fixed timestamp, so identical arrays give an identical file."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for name, member in members.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as handle:
                if isinstance(member, np.ndarray):
                    np.lib.format.write_array(handle, np.ascontiguousarray(member))
                    continue
                dtype = np.dtype(member.dtype)
                header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
                np.lib.format.write_array_header_1_0(handle, {**header, "shape": member.shape})
                rows = 0
                for chunk in member.chunks:
                    handle.write(np.ascontiguousarray(chunk, dtype).tobytes())
                    rows += len(chunk)
                if rows != member.shape[0]:
                    raise ValueError(f"{name}: {rows} rows written, {member.shape[0]} declared")
