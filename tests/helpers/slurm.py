"""A real single-node Slurm cluster for tests (Debian's slurm-wlm and munge): munged with a key of
its own, slurmctld and slurmd in the foreground, every file (config, state, spool, sockets, logs)
under one short temp dir, on free ports; ready once `sinfo` shows the node idle; on exit the
jobs are cancelled and each daemon stopped.

The node is this host under its own name, with `cpus` and `memory_mb` from the config
(`SlurmdParameters=config_overrides`), so a 2-core machine can run two 2-CPU jobs at once. There is
no accounting database, so `sacct` answers "accounting storage is disabled" (submitit then watches
its result files alone). Clients and jobs find the cluster through `SLURM_CONF` (`cluster.env`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel")
READY_S = 90.0
ACTIVE = {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "REQUEUED", "SUSPENDED"}


def missing() -> str | None:
    """Why no cluster can be started here, or None."""
    absent = [
        n for n in DAEMONS + CLIENTS if not (shutil.which(n) or Path(f"/usr/sbin/{n}").is_file())
    ]
    if absent:
        return f"{', '.join(absent)} not installed (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "the test cluster runs its daemons as root (SlurmUser=root)"
    return None


def _binary(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SLURM_CONF = """\
ClusterName=inpaintlab-test
SlurmctldHost={node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={dir}/munge.socket
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/log/slurmctld.log
SlurmdLogFile={dir}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class SlurmCluster:
    dir: Path
    node: str
    env: dict[str, str]  # SLURM_CONF: what clients, and the jobs they submit, need

    def run(self, *cmd: str, check: bool = True) -> str:
        result = subprocess.run(
            cmd, env=os.environ | self.env, capture_output=True, text=True, timeout=60
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")
        return result.stdout

    def jobs(self) -> dict[str, str]:
        """{job id: state} of the jobs the controller knows (array tasks as `<id>_<task>`)."""
        lines = self.run("squeue", "-h", "-t", "all", "-o", "%i %T").splitlines()
        return dict(line.split() for line in lines if line.strip())

    def state(self, job_id: str) -> str:
        return self.jobs().get(job_id, "UNKNOWN")

    def wait_ended(self, job_ids: set[str], timeout: float = 60) -> dict[str, str]:
        """{job id: final state} once none of them is pending, running or completing."""
        deadline = time.monotonic() + timeout
        while True:
            states = {job: self.state(job) for job in job_ids}
            if time.monotonic() > deadline or not set(states.values()) & ACTIVE:
                return states
            time.sleep(0.3)

    def requeue(self, job_id: str) -> None:
        """What a preemption with PreemptMode=REQUEUE does: SIGTERM to the job, then queued again."""
        self.run("scontrol", "requeue", job_id)

    def signal(self, job_id: str, name: str) -> None:
        """Send a signal to the job's steps (the training), as `--signal=<name>@<s>` does."""
        self.run("scancel", f"--signal={name}", job_id)

    def start_now(self, job_id: str, timeout: float = 60) -> None:
        """Once the job is queued again, let it start at once: Slurm holds a requeued job for
        two minutes (its begin time), which is no part of what the tests check."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state(job_id) == "PENDING":
                self.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")
                return
            time.sleep(0.3)
        raise RuntimeError(f"job {job_id} was not requeued: {self.state(job_id)}\n{self.logs()}")

    def logs(self, lines: int = 30) -> str:
        out = []
        for path in sorted((self.dir / "log").glob("*")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


def _wait(what: str, ready, processes: dict[str, subprocess.Popen], logs: Path) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                text = (logs / f"{name}.out").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{text}")
        with suppress(subprocess.SubprocessError, OSError):
            if ready():
                return
        time.sleep(0.3)
    raise RuntimeError(f"the test cluster did not get ready: {what}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextmanager
def slurm_cluster(cpus: int = 4, memory_mb: int = 16000) -> Iterator[SlurmCluster]:
    """Start the cluster; stop it (jobs first) on exit. Files live in a short temp dir (the
    munge socket's path must fit a Unix socket address)."""
    base = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))
    base.chmod(0o755)  # the munge socket must be reachable
    for sub in ("state", "spool", "log"):
        (base / sub).mkdir()
    logs = base / "log"
    key = base / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    node = socket.gethostname().split(".")[0]  # slurmctld must run on SlurmctldHost
    conf = base / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            dir=base,
            node=node,
            ctld_port=_free_port(),
            d_port=_free_port(),
            cpus=cpus,
            memory_mb=memory_mb,
        )
    )
    cluster = SlurmCluster(base, node, {"SLURM_CONF": str(conf)})
    env = os.environ | cluster.env
    commands = {
        "munged": [
            _binary("munged"), "--foreground", "--force",
            f"--socket={base}/munge.socket", f"--key-file={key}",
            f"--pid-file={base}/munged.pid", f"--seed-file={base}/munged.seed",
            f"--log-file={logs}/munged.log",
        ],
        "slurmctld": [_binary("slurmctld"), "-D", "-i"],
        "slurmd": [_binary("slurmd"), "-D", "-N", node],
    }  # fmt: skip
    ready = {
        "munged": lambda: (base / "munge.socket").exists(),
        "slurmctld": lambda: cluster.run("scontrol", "ping", check=False).count("UP") > 0,
        "slurmd": lambda: cluster.run("sinfo", "-h", "-n", node, "-o", "%T").strip() == "idle",
    }
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands.items():
            with open(logs / f"{name}.out", "w") as out:
                processes[name] = subprocess.Popen(
                    command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            _wait(name, ready[name], processes, logs)
        yield cluster
    finally:
        if "slurmctld" in processes and processes["slurmctld"].poll() is None:
            with suppress(Exception):
                cluster.run("scancel", "--quiet", "--partition=debug", check=False)
                deadline = time.monotonic() + 40
                while time.monotonic() < deadline and set(cluster.jobs().values()) & ACTIVE:
                    time.sleep(0.5)
        for name in reversed(list(processes)):
            _stop(processes[name])
        shutil.rmtree(base, ignore_errors=True)
