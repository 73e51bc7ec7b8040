"""Trainings running at once on one machine share its CPUs instead of fighting over them.

Torch's CPU kernels run one OpenMP thread per CPU by default, and OpenMP threads spin while they
wait. Two trainings at once with a thread per CPU each slow each other down far more than twice:
on 2 cores, two default trainings took 145 ms a step each against 60 ms with one thread each,
and two `experiment=ci` trainings 265 s against 21 s (`dvc queue start -j 2`, two terminals, a
test suite). So every training holds a slot while it lives (an flock'd file in the temp folder:
the kernel frees it when the process dies, so a killed training never keeps one), and when
fitting starts it takes the CPUs divided by the trainings holding a slot, at most its own cap
(`$OMP_NUM_THREADS`, a sweep job's share). The count is then fixed for the run: torch's float
results depend on it, so a run alone on the machine always gets the same count.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from inpaintlab.files import Busy, FileLock
from inpaintlab.processes import available_cpus, pid_alive

log = logging.getLogger(__name__)


def slots_folder() -> Path:
    """One folder per user and machine (the temp folder), shared by every project's trainings."""
    return Path(tempfile.gettempdir()) / f"inpaintlab-{os.getuid()}" / "trainings"


class TrainingSlot:
    """This process's slot among the trainings of this machine (`with TrainingSlot(): ...`)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or slots_folder()
        self.lock: FileLock | None = None

    def __enter__(self) -> TrainingSlot:
        try:
            self.lock = FileLock(self.folder / f"{os.getpid()}.lock").acquire(wait=True)
        except OSError as err:  # an unwritable temp folder: share nothing rather than fail
            log.debug("no training slot in %s: %s", self.folder, err)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock.path.unlink(missing_ok=True)
            self.lock = None

    def trainings(self) -> int:
        """Trainings holding a slot now, this one included (at least 1). Files of processes that
        are gone are removed; a held flock is what counts, so a reused pid does not."""
        count = 0
        for path in self.folder.glob("*.lock"):
            if self.lock is not None and path == self.lock.path:
                count += 1
                continue
            try:
                FileLock(path).acquire().release()
            except Busy:
                count += 1
                continue
            except OSError:
                continue
            if not (path.stem.isdigit() and pid_alive(int(path.stem))):
                path.unlink(missing_ok=True)  # its process is gone
        return max(1, count + (self.lock is None))


class ShareCpus(Callback):
    """At the start of fitting, torch threads = the CPUs divided by the trainings on this machine,
    at most `cap` (every data-parallel rank is a training, so ranks split the CPUs too)."""

    def __init__(self, slot: TrainingSlot, cap: int) -> None:
        self.slot, self.cap = slot, cap

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainings, cpus = self.slot.trainings(), available_cpus()
        threads = max(1, min(self.cap, cpus // trainings))
        if threads != torch.get_num_threads():
            log.info(
                "torch threads: %d (%d CPUs shared by %d trainings on this machine)",
                threads,
                cpus,
                trainings,
            )
        torch.set_num_threads(threads)
