"""Trainings at once share the CPUs (cpu_share.py): real processes hold real slots."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from inpaintlab.cpu_share import ShareCpus, TrainingSlot
from inpaintlab.processes import available_cpus

HOLD_A_SLOT = """
import sys, time
from pathlib import Path
from inpaintlab.cpu_share import TrainingSlot
with TrainingSlot(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(600)
"""


def hold_slot(folder: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_SLOT, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "holding"
    return process


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_second_training_is_counted_while_it_lives_and_its_slot_goes_with_it(tmp_path):
    with TrainingSlot(tmp_path) as slot:
        assert slot.trainings() == 1
        other = hold_slot(tmp_path)
        try:
            assert slot.trainings() == 2
            assert len(list(tmp_path.glob("*.lock"))) == 2
        finally:
            other.send_signal(signal.SIGKILL)  # no clean-up of its own: the kernel drops the flock
            other.wait()
        assert slot.trainings() == 1
        assert [p.name for p in tmp_path.glob("*.lock")] == [f"{os.getpid()}.lock"]
    assert list(tmp_path.glob("*.lock")) == []


def test_a_file_whose_process_is_alive_but_holds_no_lock_is_not_a_training(tmp_path):
    """A pid reused by an unrelated process: the file stays, it does not count."""
    (tmp_path / f"{os.getppid()}.lock").write_text("pid 1 on elsewhere\n")
    with TrainingSlot(tmp_path) as slot:
        assert slot.trainings() == 1


@pytest.mark.skipif(available_cpus() < 2, reason="needs 2 CPUs to share")
def test_fitting_takes_its_share_of_the_cpus_at_most_its_cap(tmp_path, threads):
    cpus = available_cpus()
    with TrainingSlot(tmp_path) as slot:
        torch.set_num_threads(1)
        ShareCpus(slot, cap=cpus).on_fit_start(None, None)
        assert torch.get_num_threads() == cpus
        others = [hold_slot(tmp_path) for _ in range(cpus - 1)]
        try:
            ShareCpus(slot, cap=cpus).on_fit_start(None, None)
            assert torch.get_num_threads() == 1
        finally:
            for other in others:
                other.kill()
                other.wait()
        ShareCpus(slot, cap=1).on_fit_start(None, None)  # alone again, but capped
        assert torch.get_num_threads() == 1
