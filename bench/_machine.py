"""What a benchmark's numbers depend on besides the code: the host, its load, the commit.

The benchmarks record this next to their results so that two runs can be compared, or shown
not to be comparable. Not a benchmark itself: `make bench` runs only `bench/bench_*.py`.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED_MACHINE = "other work may run on the same 2 cores: compare rows of one run"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def package_versions(names: Sequence[str]) -> dict[str, str | None]:
    """Installed version of each distribution, None for one that is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git(*args: str) -> str:
    """A git command's output in the repository, "" where git is missing or fails."""
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return done.stdout.strip()


def modified_since_commit(paths: Sequence[str]) -> bool:
    """Whether any of `paths` (relative to the repository) differs from the commit."""
    return bool(git("status", "--porcelain", "--", *paths))


def machine_info(
    packages: Sequence[str],
    watched: Sequence[str] = (),
    load_before: tuple[float, float, float] | None = None,
) -> dict[str, Any]:
    """The host, its load, the commit and `packages`' versions, taken at the end of a run.

    With `load_before` (os.getloadavg() at the start) both ends' load averages are recorded,
    without it only the 1-minute one at the end. With `watched` (the bench script and the
    code it measures), whether they differ from the commit, which then does not name the code
    that ran.
    """
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
    }
    load_after = os.getloadavg()
    if load_before is None:
        info["load_average_1m_at_end"] = round(load_after[0], 2)
    else:
        info["load_average_before"] = [round(x, 2) for x in load_before]
        info["load_average_after"] = [round(x, 2) for x in load_after]
    info["shared_machine"] = SHARED_MACHINE
    info["commit"] = git("rev-parse", "--short", "HEAD")
    if watched:
        info["bench_files_modified_since_commit"] = modified_since_commit(watched)
    info["packages"] = package_versions(packages)
    return info


def host_cpu_ticks() -> list[int] | None:
    """The host's aggregate CPU time counters (/proc/stat: user ... steal), or None."""
    try:
        line = Path("/proc/stat").read_text().splitlines()[0]
    except OSError:
        return None
    return [int(v) for v in line.split()[1:9]]


def host_cpu_shares(before: list[int] | None, after: list[int] | None) -> dict[str, float] | None:
    """How the host's CPUs spent the run, in shares: busy (user+system), idle, steal (taken
    by other guests of the hypervisor) — the conditions a rate on a shared host depends on."""
    if before is None or after is None:
        return None
    d = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(d) or 1
    user, nice, system, idle, iowait, irq, softirq, steal = d
    return {
        "busy": round((user + nice + system + irq + softirq) / total, 3),
        "idle": round((idle + iowait) / total, 3),
        "steal": round(steal / total, 3),
    }


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_peak_mb(pid: int) -> float | None:
    """A process's peak resident memory (VmHWM) in MiB, None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None
