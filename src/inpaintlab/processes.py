"""Which CPUs this process may use, and a process's identity (host, boot, pid, start time): enough
to tell later whether the process that holds a run or a lock is still alive."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def available_cpus() -> int:
    """CPUs this process may use (affinity and cgroup-pinned sets count, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def process_start(pid: int) -> str:
    """When pid started (clock ticks since boot, from /proc; '' where there is no /proc): with
    the pid it names one process, even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def pid_alive(pid: int, start: str = "") -> bool:
    """Whether process pid runs (and, given its start time, is still the same process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    return not start or process_start(pid) in ("", start)


def process_identity() -> dict[str, str]:
    """host, boot and pid + start time of this process: what a later run needs to tell whether
    it is still alive (pid_alive)."""
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "boot": boot_id(),
        "pid": str(pid),
        "pid_start": process_start(pid),
    }


def identity_alive(identity: dict[str, str]) -> bool | None:
    """True/False for a process of this host (and boot), None when it ran elsewhere."""
    if identity.get("host") != socket.gethostname():
        return None
    if identity.get("boot") and boot_id() and identity["boot"] != boot_id():
        return False  # the machine rebooted since
    try:
        pid = int(identity.get("pid", ""))
    except ValueError:
        return None
    return pid_alive(pid, identity.get("pid_start", ""))
