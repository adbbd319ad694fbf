"""End-to-end generation speed: wall time to generate 1 s of audio (diffusion + vocoder) with a
model at its default settings (sampler, steps, guidance, vocoder), at batch 1 and 8, against the
same with Griffin-Lim as the vocoder. Target: at least 10x faster than real time at batch 8.

Each call is split into diffusion (up to the last sampler step, from the step callback) and
decoding (the vocoder). Rounds are interleaved over the cases after a warm-up; medians reported.

    python -m benchmarks.end_to_end [--checkpoint C] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file: python benchmarks/end_to_end.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.pipeline import Pipeline
from audiodiff.vocoder import GriffinLimVocoder
from benchmarks.machine import RESULTS, command, machine_info, now, sampling_record, write_result
from benchmarks.samplers import default_checkpoint

BATCHES = (1, 8)
SECONDS = 1.0
TARGET_X_REAL_TIME = 10.0  # at batch 8, with the model's own vocoder


def timed_generate(pipe: Pipeline, batch: int, label) -> tuple[dict, dict]:
    """Seconds for one `generate` call of `batch` clips of SECONDS, split at the last sampler step;
    and the settings the call used (its `out.settings`)."""
    last_step = []
    start = time.perf_counter()
    out = pipe.generate(
        label=label, n=batch, duration=SECONDS, seed=0, callback=lambda info: last_step.append(time.perf_counter())
    )
    total = time.perf_counter() - start
    diffusion = last_step[-1] - start
    return {"total": total, "diffusion": diffusion, "vocoder": total - diffusion}, sampling_record(out.settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=default_checkpoint(), help="default: the bundled digits model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "end_to_end.json")
    args = parser.parse_args()
    if args.checkpoint is None:
        parser.error("no bundled digits model in this install; pass --checkpoint (a checkpoint or run directory)")
    torch.set_num_threads(args.threads)

    pipes = {"default": Pipeline.from_pretrained(args.checkpoint)}
    default_is_griffin_lim = isinstance(pipes["default"].vocoder, GriffinLimVocoder)
    if not default_is_griffin_lim:
        pipes["griffin_lim"] = Pipeline.from_pretrained(args.checkpoint, vocoder="griffin_lim")
    label = (pipes["default"].labels or [None])[0]
    cases = [(name, batch) for name in pipes for batch in BATCHES]
    times: dict = {case: [] for case in cases}
    used: dict = {}  # per case name, what its calls used
    with torch.inference_mode():
        for index in range(args.rounds + 1):  # round 0 is the warm-up
            for name, batch in cases:
                measured, used[name] = timed_generate(pipes[name], batch, label)
                if index > 0:
                    times[(name, batch)].append(measured)
                print(
                    f"round {index}{' (warm-up)' if index == 0 else ''}: {name} batch {batch}: "
                    f"{measured['total']:.2f} s ({measured['vocoder']:.2f} s vocoder)",
                    flush=True,
                )

    sampling = pipes["default"].config.sampling  # the vocoder the model names (not a sampling setting)
    rows = []
    for (name, batch), measured in times.items():
        total = statistics.median(m["total"] for m in measured)
        pipe = pipes[name]
        rows.append(
            {
                "vocoder": type(pipe.vocoder).__name__ if name == "default" else "griffin_lim",
                "case": name,
                "batch": batch,
                "seconds_of_audio": batch * SECONDS,
                "median_s": round(total, 3),
                "diffusion_s": round(statistics.median(m["diffusion"] for m in measured), 3),
                "vocoder_s": round(statistics.median(m["vocoder"] for m in measured), 3),
                "x_real_time": round(batch * SECONDS / total, 2),
                "rounds": len(measured),
            }
        )
    default_b8 = next(row for row in rows if row["case"] == "default" and row["batch"] == max(BATCHES))
    target = {
        "batch": max(BATCHES),
        "x_real_time": default_b8["x_real_time"],
        "wanted": TARGET_X_REAL_TIME,
        "met": default_b8["x_real_time"] >= TARGET_X_REAL_TIME,
    }
    training = pipes["default"].info.get("training") or {}
    print()
    print(f"{'vocoder':<22} {'batch':>5} {'total s':>8} {'diffusion':>9} {'vocoder':>8} {'x real time':>11}")
    for row in rows:
        print(
            f"{row['vocoder']:<22} {row['batch']:>5} {row['median_s']:>8.2f} {row['diffusion_s']:>9.2f} "
            f"{row['vocoder_s']:>8.2f} {row['x_real_time']:>11.2f}"
        )
    print(
        f"target: {TARGET_X_REAL_TIME:g}x real time at batch {target['batch']}: {target['x_real_time']:.2f}x, "
        f"{'met' if target['met'] else 'MISSED'}"
    )
    if default_is_griffin_lim:
        print("note: the model's default vocoder is Griffin-Lim, so the default rows are the Griffin-Lim baseline")
    result = {
        "benchmark": "end_to_end",
        "date": now(),
        "command": command(),
        "machine": machine_info(),
        "checkpoint": pipes["default"].info["path"],
        "training_step": training.get("step"),
        "training_steps_planned": training.get("steps"),
        "settings": {
            **used["default"],
            "vocoder": sampling.vocoder,
            "griffin_lim_iters": sampling.griffin_lim_iters,
            "label": label,
            "seconds": SECONDS,
        },
        "default_vocoder_is_griffin_lim": default_is_griffin_lim,
        "rows": rows,
        "target": target,
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
