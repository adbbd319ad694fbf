"""U-Net speed on this machine: training steps/s and sampling ms/step, small and medium sizes,
dims 1 (waveform) and 2 (mel), fp32 and bf16 autocast, all in one run (fp32 is the baseline).

Inputs: mel 80 x 64 at batch 32 (training) / 8 (sampling); waveform 16384 samples at batch 8 / 4.
Interleaved rounds so background load hits every case alike; medians are reported.

    python benchmarks/unet_speed.py [--threads 2] [--rounds 3] [--out benchmarks/results/unet_speed.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file: python benchmarks/unet_speed.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.models.conditioning import ConditioningConfig
from audiodiff.models.unet import UNet, UNetConfig
from audiodiff.train.trainer import cpu_has_fast_bf16
from benchmarks.machine import cpu_model

SIZES = {
    # dims=2: the bundled digits model's shape (medium) and the quickstart's (small)
    (2, "small"): dict(channels=32, channel_mults=(1, 2, 2), num_res_blocks=1, attention_levels=(2,)),
    (2, "medium"): dict(
        channels=48, channel_mults=(1, 2, 4), num_res_blocks=1, attention_levels=(1, 2), head_channels=48, norm_groups=16, patch_size=2
    ),
    (1, "small"): dict(channels=32, channel_mults=(1, 2, 4), num_res_blocks=1, attention_levels=(2,), patch_size=16),
    (1, "medium"): dict(channels=64, channel_mults=(1, 2, 4, 4), num_res_blocks=2, attention_levels=(3,), patch_size=16),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--out", default="benchmarks/results/unet_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    precisions = args.precisions.split(",")
    load_before = os.getloadavg()
    cases = {}
    for (dims, size) in SIZES:
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
        "configs": {f"dims{d}_{s}": {k: list(v) if isinstance(v, tuple) else v for k, v in c.items()} for (d, s), c in SIZES.items()},
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
