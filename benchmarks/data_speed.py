"""Data at scale: the prepare stage's throughput, memory and incremental rerun, and whether
training on the default config waits for its data.

    python benchmarks/data_speed.py --count 100000 --size 160x120 [--workers W] [--add 1000]
    python benchmarks/data_speed.py --photos DIR [--workers W] [--add K]
    python benchmarks/data_speed.py --count 0                    # (b) only, on the built-in photos

(a) prepare. The folder: `--photos DIR` (linked into a temp folder, DIR is not touched), or
`--count N` synthetic JPEG photos of `--size WxH` (smooth random colours, 1,000 per sub-folder).
prepare runs in a fresh process with the default data config, cold (its own prepared folder
and cache), once with `data.workers=1` and once with `--workers` (default: every CPU); each
prints photos/s, the stage's time (photos, then masks/manifest), and the peak RSS of the main
process and of the largest worker. Then `--add` K new photos join the folder and the second
configuration runs again: the decoded vs cached counts and the incremental time.

(b) training. The default training config (conf/, `datamodule.num_workers` as configured, or
each of `--loader-workers`) on the built-in photos (`inpaintlab data photos`, prepared at the
default config), and on the folder of (a) when there is one: `--steps` optimizer steps with a
Lightning callback timing the gap between one batch's end and the next one's start (the wait for
data) and each batch's start to end (forward, backward, step); the first `--warmup` steps are
left out. "Waits for data" when the mean gap is above 5% of the mean step.

A measurement, not a test; tests/test_prepare_scale.py checks what the figures rely on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from inpaintlab.processes import available_cpus

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# prepare_run in a fresh process. Peak memory: VmHWM of /proc (getrusage's ru_maxrss would
# carry over the RSS of the process that forked it), polled for the workers while they live.
PREPARE = """
import json, os, resource, sys, threading, time
from hydra import compose, initialize_config_dir
from inpaintlab.prepare import prepare_run

def hwm_mb(pid="self"):
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0

def children():
    me = str(os.getpid())
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[1] == me:
                    yield pid
        except OSError:
            pass

peak_worker, done = 0.0, False
def poll():
    global peak_worker
    while not done:
        peak_worker = max([peak_worker, *(hwm_mb(p) for p in children())])
        time.sleep(0.2)

if __name__ == "__main__":
    with initialize_config_dir(sys.argv[1], version_base="1.3"):
        cfg = compose("config", overrides=sys.argv[2:])
    threading.Thread(target=poll, daemon=True).start()
    run = prepare_run(cfg.data)
    done = True
    print(json.dumps({"seconds": run.seconds, "photo_seconds": run.photo_seconds,
        "decoded": run.decoded, "reused": run.reused, "workers": run.workers,
        "counts": run.manifest["counts"], "rss_main_mb": hwm_mb(),
        "rss_worker_mb": peak_worker, "cpu_seconds": sum(
            u.ru_utime + u.ru_stime for u in map(resource.getrusage,
            (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))}))
"""


def synthetic_photo(index: int, width: int, height: int) -> bytes:
    """A smooth random-colour photo as JPEG (quality 90), fixed by its index."""
    rng = np.random.default_rng(index)
    small = rng.integers(0, 255, (height // 16 + 2, width // 16 + 2, 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def _write_photos(args: tuple[Path, range, int, int]) -> None:
    folder, indices, width, height = args
    for i in indices:
        path = folder / f"{i // 1000:03d}" / f"photo_{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(synthetic_photo(i, width, height))


def add_photos(folder: Path, first: int, count: int, size: tuple[int, int], workers: int) -> None:
    """Photos first .. first + count - 1 into folder, made in parallel."""
    step = 500
    jobs = [
        (folder, range(s, min(first + count, s + step)), *size)
        for s in range(first, first + count, step)
    ]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_photos, jobs))


def link_tree(source: Path, dest: Path) -> int:
    """dest mirrors source with hard links (copies across file systems); returns the count."""
    count = 0
    for path in sorted(source.rglob("*")):
        if path.is_file():
            target = dest / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
            count += 1
    return count


def run_prepare(raw: Path, prepared: Path, workers: int, extra: list[str]) -> dict:
    overrides = [
        f"data.raw_dir={raw}",
        f"data.prepared_dir={prepared}",
        f"data.workers={workers}",
        *extra,
    ]
    out = subprocess.run(
        [sys.executable, "-c", PREPARE, str(CONF), *overrides],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"prepare failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def show(label: str, run: dict, photos: int) -> None:
    rest = run["seconds"] - run["photo_seconds"]
    print(
        f"  {label}: {photos / run['seconds']:.0f} photos/s, {run['seconds']:.1f} s "
        f"(photos {run['photo_seconds']:.1f} s, masks and the rest {rest:.1f} s), "
        f"CPU {1000 * run['cpu_seconds'] / photos:.2f} ms/photo"
    )
    print(
        f"    decoded {run['decoded']}, from the cache {run['reused']}; peak RSS: main "
        f"{run['rss_main_mb']:.0f} MB, largest worker {run['rss_worker_mb']:.0f} MB; "
        f"split {run['counts']}"
    )


def measure_prepare(args: argparse.Namespace, work: Path) -> Path | None:
    raw = work / "raw"
    width, height = (int(v) for v in args.size.lower().split("x"))
    started = time.perf_counter()
    if args.photos:
        count = link_tree(Path(args.photos), raw)
    else:
        count = args.count
        add_photos(raw, 0, count, (width, height), args.workers)
    if not count:
        return None
    print(f"(a) prepare: {count} photos in {raw} ({time.perf_counter() - started:.0f} s to make)")
    print(f"    default data config, {args.workers} CPUs available to workers: {available_cpus()}")
    extra = list(args.prepare_override)
    for workers in dict.fromkeys([1, args.workers]):
        if workers == 1 and args.skip_single:
            continue
        run = run_prepare(raw, work / f"prepared_w{workers}", workers, extra)
        show(f"workers={workers}, cold", run, count)
    if args.add:
        add_photos(raw, 10_000_000, args.add, (width, height), args.workers)
        run = run_prepare(raw, work / f"prepared_w{args.workers}", args.workers, extra)
        show(f"workers={args.workers}, +{args.add} photos", run, count + args.add)
    return work / f"prepared_w{args.workers}"


def step_timer():
    """A Lightning callback recording, per training batch, the wait before it (the previous
    batch's end to its start: the loader) and its own time (start to end: forward, backward,
    optimizer step). Lightning is imported here only: (a) runs without torch in memory."""
    import lightning as L

    class StepTimer(L.Callback):
        def __init__(self) -> None:
            self.waits: list[float] = []
            self.steps: list[float] = []
            self.start = self.end = None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            self.start = time.perf_counter()
            if self.end is not None:
                self.waits.append(self.start - self.end)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.end = time.perf_counter()
            self.steps.append(self.end - self.start)

    return StepTimer()


def measure_training(prepared: Path, label: str, loader_workers: int | None, args) -> None:
    from hydra import compose, initialize_config_dir

    from inpaintlab.train import build, make_trainer

    overrides = [f"data.prepared_dir={prepared}", *args.train_override]
    if loader_workers is not None:
        overrides.append(f"datamodule.num_workers={loader_workers}")
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    module, datamodule, _, _ = build(cfg)
    timer = step_timer()
    trainer = make_trainer(
        cfg.trainer,
        module,
        logger=False,
        callbacks=[timer],
        enable_checkpointing=False,
        enable_progress_bar=False,
        max_steps=args.warmup + args.steps,
        max_epochs=-1,
        limit_val_batches=0,
    )
    trainer.fit(module, datamodule=datamodule)
    waits = timer.waits[args.warmup :]
    steps = timer.steps[args.warmup + 1 :]
    wait, step = statistics.mean(waits), statistics.mean(steps)
    per_epoch = len(datamodule.train_dataloader())
    print(
        f"{label}: num_workers={cfg.datamodule.num_workers}, batch {cfg.datamodule.batch_size}, "
        f"{per_epoch} steps/epoch, {len(datamodule.train_set.files)} train photos, "
        f"{len(steps)} steps timed"
    )
    print(
        f"    data wait per step: mean {1000 * wait:6.1f} ms, median "
        f"{1000 * statistics.median(waits):6.1f} ms, max {1000 * max(waits):6.1f} ms"
    )
    print(
        f"    step (fwd+bwd+opt): mean {1000 * step:6.1f} ms, median "
        f"{1000 * statistics.median(steps):6.1f} ms"
    )
    share = wait / (wait + step)
    verdict = "yes" if wait > 0.05 * step else "no"
    print(f"    waits for data: {verdict} ({100 * share:.0f}% of training time is the wait)")


def builtin_prepared(work: Path) -> Path:
    raw, prepared = work / "builtin_raw", work / "builtin_prepared"
    subprocess.run(
        [str(Path(sys.executable).with_name("inpaintlab")), "data", "photos", "--out", str(raw)],
        check=True,
        capture_output=True,
    )
    run_prepare(raw, prepared, 1, [])
    return prepared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", help="a folder of photos (not modified)")
    parser.add_argument("--count", type=int, default=10_000, help="synthetic photos (0: none)")
    parser.add_argument("--size", default="160x120", help="synthetic photo size WxH")
    parser.add_argument("--workers", type=int, default=available_cpus())
    parser.add_argument("--add", type=int, default=1000, help="photos added for the rerun")
    parser.add_argument("--skip-single", action="store_true", help="no workers=1 run")
    parser.add_argument("--prepare-override", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--loader-workers", type=int, nargs="*", default=[None])
    parser.add_argument("--train-override", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-train", action="store_true", help="(a) only")
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temp one)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress of a long run, also into a file

    work = Path(args.keep or tempfile.mkdtemp(prefix="inpaintlab-data-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        big = measure_prepare(args, work)
        if args.no_train:
            return
        print("(b) training on the default config")
        builtin = builtin_prepared(work)
        for loader_workers in args.loader_workers:
            measure_training(builtin, "built-in photos", loader_workers, args)
            if big is not None:
                measure_training(big, f"the {big.name} folder of (a)", loader_workers, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
