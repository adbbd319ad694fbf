"""U-Net speed on this machine, in two parts, each against a baseline measured in the same run.

Steps (default): training steps/s and sampling ms/step, small and medium sizes, dims 1 (waveform)
and 2 (mel), fp32 and bf16 autocast (fp32 is the baseline). Inputs: mel 80 x 64 at batch 32
(training) / 8 (sampling); waveform 16384 samples at batch 8 / 4.

Generate (`--generate`): a bundled model's whole `generate` call (guided U-Net calls and the
vocoder) at batch 1 and 16, in each precision, memory format and with or without `torch.compile`:
its FLOPs (counted by `torch.utils.flop_counter`) over its seconds, beside a 2048 x 2048 matrix
product's GFLOP/s in the same precision (the machine's practical peak; targets: 70% at batch 16,
40% at batch 1).

Interleaved rounds so background load hits every case alike; medians are reported.

    python benchmarks/unet_speed.py [--threads 2] [--rounds 3] [--out benchmarks/results/unet_speed.json]
    python benchmarks/unet_speed.py --generate [--model digits] [--compile] [--out benchmarks/results/generate_speed.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

if __package__ in (None, ""):  # run as a file: python benchmarks/unet_speed.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.models.conditioning import ConditioningConfig
from audiodiff.models.unet import UNet, UNetConfig
from audiodiff.precision import cpu_has_fast_bf16
from benchmarks.machine import RESULTS, command, cpu_model, machine_info, now, write_result

SIZES = {
    # dims=2: the bundled digits model's shape (medium) and the quickstart's (small)
    (2, "small"): dict(channels=32, channel_mults=(1, 2, 2), num_res_blocks=1, attention_levels=(2,)),
    (2, "medium"): dict(
        channels=48,
        channel_mults=(1, 2, 4),
        num_res_blocks=1,
        attention_levels=(1, 2),
        head_channels=48,
        norm_groups=16,
        patch_size=2,
    ),
    (1, "small"): dict(channels=32, channel_mults=(1, 2, 4), num_res_blocks=1, attention_levels=(2,), patch_size=16),
    (1, "medium"): dict(
        channels=64, channel_mults=(1, 2, 4, 4), num_res_blocks=2, attention_levels=(3,), patch_size=16
    ),
}
INPUTS = {2: ((32, 1, 80, 64), (8, 1, 80, 64)), 1: ((8, 1, 16384), (4, 1, 16384))}


def build(dims: int, size: str) -> UNet:
    torch.manual_seed(0)
    return UNet(UNetConfig(dims=dims, **SIZES[(dims, size)]), ConditioningConfig(labels=[str(i) for i in range(10)]))


def train_step(model, optimizer, x, precision: str) -> float:
    labels = torch.zeros(x.shape[0], dtype=torch.long)
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = model(x, torch.rand(x.shape[0]), {"label": labels}).float().pow(2).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


@torch.inference_mode()
def sample_step(model, x, precision: str) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        model(x, torch.rand(x.shape[0]), {})
    return time.perf_counter() - start


MATMUL_SIZE = 2048
GENERATE_TARGETS = {1: 0.40, 16: 0.70}  # share of the same run's matmul GFLOP/s (issue: performance)


def matmul_seconds(dtype: torch.dtype, repeats: int = 8) -> float:
    """Seconds for one MATMUL_SIZE^2 product in `dtype` (the fastest of `repeats`)."""
    a, b = (torch.randn(MATMUL_SIZE, MATMUL_SIZE).to(dtype) for _ in range(2))
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return best


def generate_call(pipe, batch: int, steps: int) -> float:
    start = time.perf_counter()
    pipe.generate(label=pipe.labels[0] if pipe.labels else None, n=batch, steps=steps, seed=0, progress=False)
    return time.perf_counter() - start


def generate_flops(pipe, batch: int, steps: int) -> int:
    """FLOPs of one generate call: the U-Net's calls and the vocoder's (FFTs are not counted)."""
    with FlopCounterMode(display=False) as counter:
        generate_call(pipe, batch, steps)
    return counter.get_total_flops()


def generate_main(args) -> None:
    from audiodiff.pipeline import Pipeline

    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    precisions = [p for p in args.precisions.split(",") if p != "bf16" or cpu_has_fast_bf16()]
    variants = [
        (precision, channels_last, compiled)
        for precision in precisions
        for channels_last in (False, True)
        for compiled in ((False, True) if args.compile else (False,))
    ]
    pipes = {}
    for variant in variants:
        precision, channels_last, compiled = variant
        pipes[variant] = Pipeline.from_pretrained(
            args.model, precision=precision, channels_last=channels_last, compile=compiled
        )
    flops = {batch: generate_flops(pipes[variants[0]], batch, args.steps) for batch in args.batches}
    first = {}  # warm-up (and compilation: the one-off cost of compile=True), 2 sampler steps
    for variant, pipe in pipes.items():
        for batch in args.batches:
            first[(variant, batch)] = generate_call(pipe, batch, 2)
    matmul = {precision: [] for precision in precisions}
    times = {(variant, batch): [] for variant in variants for batch in args.batches}
    for _ in range(args.rounds):
        for precision in precisions:
            matmul[precision].append(matmul_seconds(dtypes[precision]))
        for (variant, batch), measured in times.items():
            measured.append(generate_call(pipes[variant], batch, args.steps))
    peak = {precision: 2 * MATMUL_SIZE**3 / statistics.median(values) / 1e9 for precision, values in matmul.items()}
    rows = []
    for (variant, batch), measured in times.items():
        precision, channels_last, compiled = variant
        seconds = statistics.median(measured)
        achieved = flops[batch] / seconds / 1e9
        rows.append(
            {
                "batch": batch,
                "precision": precision,
                "channels_last": channels_last,
                "compile": compiled,
                "seconds": round(seconds, 3),
                "gflop": round(flops[batch] / 1e9, 2),
                "gflop_per_s": round(achieved, 1),
                "of_matmul": round(achieved / peak[precision], 3),
                "of_fp32_matmul": round(achieved / peak["fp32"], 3),
                "first_call_seconds": round(first[(variant, batch)], 2),
            }
        )
    defaults = Pipeline.from_pretrained(args.model)
    default = (defaults.precision, defaults.channels_last, defaults.compile)
    best = {
        batch: min((row for row in rows if row["batch"] == batch), key=lambda row: row["seconds"])
        for batch in args.batches
    }
    result = {
        "benchmark": "generate_speed",
        "date": now(),
        "command": command(),
        "machine": machine_info(),
        "model": args.model,
        "steps": args.steps,
        "matmul_gflop_per_s": {precision: round(value, 1) for precision, value in peak.items()},
        "targets": {str(batch): share for batch, share in GENERATE_TARGETS.items()},
        "defaults": {"precision": default[0], "channels_last": default[1], "compile": default[2]},
        "fastest": {
            str(batch): {key: row[key] for key in ("precision", "channels_last", "compile", "seconds", "of_matmul")}
            for batch, row in best.items()
        },
        "results": rows,
    }
    print(f"matmul {MATMUL_SIZE}^2: " + ", ".join(f"{p} {v:.1f} GFLOP/s" for p, v in peak.items()))
    print(
        f"{'batch':>5} {'prec':>5} {'chlast':>6} {'compile':>7} {'s/call':>7} {'GFLOP':>7} {'GFLOP/s':>8} {'of matmul':>9} {'1st call s':>10}"
    )
    for row in rows:
        print(
            f"{row['batch']:>5} {row['precision']:>5} {row['channels_last']!s:>6} {row['compile']!s:>7} {row['seconds']:>7.3f} "
            f"{row['gflop']:>7.1f} {row['gflop_per_s']:>8.1f} {row['of_matmul']:>9.1%} {row['first_call_seconds']:>10.1f}"
        )
    write_result(result, args.out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument(
        "--generate", action="store_true", help="time a bundled model's generate call against a matmul instead"
    )
    parser.add_argument("--model", default="digits", help="with --generate: a bundled model or checkpoint")
    parser.add_argument("--steps", type=int, default=16, help="with --generate: sampler steps per call")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16], help="with --generate")
    parser.add_argument("--compile", action="store_true", help="with --generate: also time torch.compile'd U-Nets")
    parser.add_argument(
        "--out", default=None, help="default: benchmarks/results/unet_speed.json (generate_speed.json with --generate)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.generate:
        args.out = args.out or str(RESULTS / "generate_speed.json")
        return generate_main(args)
    args.out = args.out or str(RESULTS / "unet_speed.json")
    precisions = args.precisions.split(",")
    load_before = os.getloadavg()
    cases = {}
    for dims, size in SIZES:
        model = build(dims, size)
        optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
        train_x, sample_x = (torch.randn(shape) for shape in INPUTS[dims])
        for precision in precisions:
            cases[(dims, size, precision)] = (model, optimizer, train_x, sample_x)
    times = {key: {"train": [], "sample": []} for key in cases}
    for key, (model, optimizer, train_x, sample_x) in cases.items():  # warm-up
        train_step(model, optimizer, train_x, key[2])
        sample_step(model, sample_x, key[2])
    for _ in range(args.rounds):
        for key, (model, optimizer, train_x, sample_x) in cases.items():
            times[key]["train"].append(train_step(model, optimizer, train_x, key[2]))
            times[key]["sample"].append(sample_step(model, sample_x, key[2]))
    rows = []
    for (dims, size, precision), measured in times.items():
        model, _, train_x, sample_x = cases[(dims, size, precision)]
        train_s = statistics.median(measured["train"])
        sample_s = statistics.median(measured["sample"])
        rows.append(
            {
                "dims": dims,
                "size": size,
                "precision": precision,
                "parameters": model.num_parameters(),
                "train_input": list(train_x.shape),
                "train_steps_per_s": round(1 / train_s, 3),
                "train_s_per_step": round(train_s, 3),
                "sample_input": list(sample_x.shape),
                "sample_ms_per_step": round(sample_s * 1000, 1),
            }
        )
    for row in rows:
        base = next(r for r in rows if (r["dims"], r["size"], r["precision"]) == (row["dims"], row["size"], "fp32"))
        row["train_speedup_vs_fp32"] = round(base["train_s_per_step"] / row["train_s_per_step"], 2)
    result = {
        "benchmark": "unet_speed",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/unet_speed.py " + f"--threads {args.threads} --rounds {args.rounds}",
        "machine": {
            "cpu_model": cpu_model(),
            "native_bf16": cpu_has_fast_bf16(),
            "threads": args.threads,
            "torch": torch.__version__,
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
        },
        "configs": {
            f"dims{d}_{s}": {k: list(v) if isinstance(v, tuple) else v for k, v in c.items()}
            for (d, s), c in SIZES.items()
        },
        "results": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'dims':>4} {'size':>6} {'prec':>5} {'params':>8} {'train it/s':>10} {'sample ms':>10} {'vs fp32':>7}")
    for row in rows:
        print(
            f"{row['dims']:>4} {row['size']:>6} {row['precision']:>5} {row['parameters'] / 1e6:>7.1f}M "
            f"{row['train_steps_per_s']:>10.3f} {row['sample_ms_per_step']:>10.1f} {row['train_speedup_vs_fp32']:>7.2f}"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
