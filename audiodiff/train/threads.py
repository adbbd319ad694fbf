"""How many torch threads a run uses: the cores other work leaves free, read from /proc/stat."""

from __future__ import annotations

import math
import os
import time


class Threads:
    def __init__(self, count: int, why: str):
        self.count, self.why = count, why

    def __str__(self) -> str:
        return f"{self.count} ({self.why})"


def choose_threads(asked: int, processes: int = 1) -> Threads:
    """train.threads; for 0, $OMP_NUM_THREADS where set, else the cores that other work leaves
    free (torch's default of one thread per core ran 2.1x slower than one thread with another
    process busy on one of two cores: benchmarks/threads.py). The automatic choice is made once per process, so every run in it
    computes with the same thread count."""
    if asked > 0:
        return Threads(asked, "train.threads")
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return Threads(int(os.environ["OMP_NUM_THREADS"]), "OMP_NUM_THREADS")
    if processes not in _AUTO_THREADS:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        busy = busy_cores(cores)
        free = max(1, math.floor(cores - busy + 0.5))
        count = max(1, free // max(1, processes))
        why = f"{cores} cores, {busy:.1f} busy with other work" + (f", {processes} processes" if processes > 1 else "")
        _AUTO_THREADS[processes] = Threads(count, f"{why}; train.threads=N to choose")
    return _AUTO_THREADS[processes]


def busy_cores(cores: int, seconds: float = 0.5) -> float:
    """How many cores other processes keep busy now: /proc/stat's non-idle share over `seconds`
    (this process waits meanwhile), else the 1-minute load average, which lags by a minute."""

    def times() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as handle:
                values = [int(v) for v in handle.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        return sum(values), values[3] + (values[4] if len(values) > 4 else 0)  # total, idle + iowait

    first = times()
    if first is None:
        return min(float(cores), os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0.0
    time.sleep(seconds)
    second = times()
    total, idle = second[0] - first[0], second[1] - first[1]
    return cores * (1 - idle / total) if total > 0 else 0.0


_AUTO_THREADS: dict[int, Threads] = {}
