"""Training speed against the thread count, on a quiet machine and beside a busy core: the
measurement behind `train.threads=0` (take the cores the load average leaves free).

One busy core is another process spinning in a loop (what a second training, a browser or a
build does to a laptop). For each condition and thread count: the median seconds of a small mel
U-Net training step (batch 16), interleaved rounds.

    python -m benchmarks.threads [--rounds 5] [--out benchmarks/results/threads.json]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.precision import cpu_has_fast_bf16
from benchmarks.machine import RESULTS, command, machine_info, now, write_result
from benchmarks.unet_speed import build, train_step


def spin(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


def measure(threads: int, rounds: int, precision: str) -> float:
    torch.set_num_threads(threads)
    model = build(2, "small")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(16, 1, 80, 64)
    train_step(model, optimizer, x, precision)  # warm-up
    return statistics.median(train_step(model, optimizer, x, precision) for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "threads.json")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    precision = "bf16" if cpu_has_fast_bf16() else "fp32"
    rows = []
    for busy in (0, 1):
        stop = multiprocessing.Event()
        hogs = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(busy)]
        for hog in hogs:
            hog.start()
        try:
            for threads in range(1, cores + 1):
                seconds = measure(threads, args.rounds, precision)
                rows.append({"busy_cores": busy, "threads": threads, "seconds_per_step": round(seconds, 4)})
                print(f"busy cores {busy}, threads {threads}: {seconds:.3f} s/step", flush=True)
        finally:
            stop.set()
            for hog in hogs:
                hog.join()
    best = {
        busy: min((r for r in rows if r["busy_cores"] == busy), key=lambda r: r["seconds_per_step"])["threads"]
        for busy in (0, 1)
    }
    write_result(
        {
            "benchmark": "threads",
            "date": now(),
            "command": command(),
            "machine": machine_info(),
            "precision": precision,
            "model": "mel U-Net small (quickstart size), batch 16, 80 x 64",
            "rows": rows,
            "fastest_threads": {f"{busy} busy": threads for busy, threads in best.items()},
            "auto_choice": {f"{busy} busy": max(1, cores - busy) for busy in (0, 1)},
        },
        args.out,
    )


if __name__ == "__main__":
    main()
