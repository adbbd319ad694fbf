"""Vocoder speed on this machine: how many times faster than real time each vocoder runs.

HiFi-GAN V1/V2/V3 (weight norm folded), the ISTFT generator (default and Vocos-sized) and
Griffin-Lim (32 iterations), at batch 1 and 16, for 1 s and 10 s of 22.05 kHz audio, all in one
run so they share the machine's conditions. Untrained weights: speed does not depend on them.
Beside them, the bundled 16 kHz vocoder as a user calls it (`Vocoder.__call__`: input checks,
inference mode, chunking, clamping), bare generator and with mel matching, and 16 kHz
Griffin-Lim; and batch 1 x 0.25 s, where per-call overhead shows (`overhead` in the JSON:
the bundled vocoder's call against its bare generator).
Runs are interleaved (one round over every vocoder, repeated), so background load hits all of
them alike; the median of the rounds is reported, with the load average before and after.

    python benchmarks/vocoder_speed.py [--threads 2] [--budget 20] [--out benchmarks/results/vocoder_speed.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file: python benchmarks/vocoder_speed.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.audio import MelSpec, griffin_lim
from audiodiff.vocoder.generators import build_generator
from benchmarks.machine import command, cpu_model

MEL_SPEC = MelSpec(sample_rate=22050, n_fft=1024, hop_length=256, win_length=1024, n_mels=80, f_max=11025)
CASES = [(1, 0.25), (1, 1.0), (1, 10.0), (16, 1.0), (16, 10.0)]  # (batch, seconds)
BUNDLED = "vocoder-16k"
HIFIGANS = ("hifigan_v1", "hifigan_v2", "hifigan_v3")
VOCOS_SIZE = {"dim": 512, "intermediate_dim": 1536, "num_layers": 8}  # the published Vocos backbone, for scale


def vocoders(
    seed: int = 0, trained: tuple[str, ...] = (), bundled_only: bool = False
) -> dict[str, tuple[MelSpec, Callable[[torch.Tensor], torch.Tensor]]]:
    """name -> (its MelSpec, mel `[batch, n_mels, frames]` -> audio), each ready for inference.
    `trained`: more vocoders (directories or bundled names), timed as a user calls them;
    `bundled_only`: leave out the untrained 22.05 kHz architectures."""
    from audiodiff.vocoder import Vocoder

    torch.manual_seed(seed)
    out: dict[str, tuple[MelSpec, Callable[[torch.Tensor], torch.Tensor]]] = {}
    for name in () if bundled_only else HIFIGANS:
        out[name] = (MEL_SPEC, build_generator(name, MEL_SPEC).eval().remove_weight_norm())
    if not bundled_only:
        out["istft"] = (MEL_SPEC, build_generator("istft", MEL_SPEC).eval())
        out["istft_vocos_size"] = (MEL_SPEC, build_generator("istft", MEL_SPEC, **VOCOS_SIZE).eval())
        out["griffin_lim_32"] = (MEL_SPEC, lambda mel: griffin_lim(mel, MEL_SPEC, num_iters=32))
    bundled = Vocoder.from_pretrained(BUNDLED)
    spec = bundled.mel_spec
    out[f"{BUNDLED} generator"] = (spec, bundled.generator)
    out[f"{BUNDLED} call"] = (spec, lambda mel: bundled(mel))
    matched = Vocoder.from_pretrained(BUNDLED)
    matched.match_mel = 8
    out[f"{BUNDLED} call, match_mel 8"] = (spec, lambda mel: matched(mel))
    out["griffin_lim_32 (16 kHz)"] = (spec, lambda mel: griffin_lim(mel, spec, num_iters=32))
    for path in trained:
        vocoder = Vocoder.from_pretrained(path)
        out[f"{path} call"] = (vocoder.mel_spec, vocoder)
    return out


def time_call(function: Callable[[torch.Tensor], torch.Tensor], mel: torch.Tensor) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call. CPU time barely moves with background load
    at one thread, so `--threads 1` gives each vocoder's compute cost even on a busy machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    function(mel)
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(budget_s: float, max_repeats: int, trained: tuple[str, ...] = (), bundled_only: bool = False) -> list[dict]:
    """Seconds per call for every (vocoder, case): a warm-up, then interleaved rounds within a time budget."""
    models = vocoders(trained=trained, bundled_only=bundled_only)
    rows = []
    for batch, seconds in CASES:
        mels, frames, audio_seconds = {}, {}, {}
        for name, (spec, _) in models.items():
            frames[name] = round(seconds * spec.sample_rate / spec.hop_length)
            mels[name] = torch.randn(
                batch, spec.n_mels, frames[name], generator=torch.Generator().manual_seed(1)
            ).clamp(-1, 1)
            audio_seconds[name] = batch * frames[name] * spec.hop_length / spec.sample_rate
        times: dict[str, list[tuple[float, float]]] = {}
        repeats: dict[str, int] = {}
        with torch.inference_mode():
            for name, (_, model) in models.items():
                first = time_call(model, mels[name])  # warm-up (allocator, oneDNN primitives for this shape)
                times[name] = []
                if first[0] > budget_s:  # V1 at 16 x 10 s: the warm-up run is the one measurement
                    times[name].append(first)
                    repeats[name] = 0
                else:
                    repeats[name] = max(1, min(max_repeats, int(budget_s / max(first[0], 1e-6))))
            for round_index in range(max_repeats):
                for name, (_, model) in models.items():
                    if round_index < repeats[name]:
                        times[name].append(time_call(model, mels[name]))
        for name in models:
            median = statistics.median(wall for wall, _ in times[name])
            median_cpu = statistics.median(cpu for _, cpu in times[name])
            rows.append(
                {
                    "vocoder": name,
                    "batch": batch,
                    "seconds": seconds,
                    "frames": frames[name],
                    "repeats": len(times[name]),
                    "warm_up_included": repeats[name] == 0,
                    "median_s": median,
                    "min_s": min(wall for wall, _ in times[name]),
                    "x_real_time": audio_seconds[name] / median,
                    "median_cpu_s": median_cpu,
                    "x_real_time_per_cpu_second": audio_seconds[name] / median_cpu,
                }
            )
        print(f"measured batch {batch} x {seconds:g} s", flush=True)
    return rows


def table(rows: list[dict], key: str = "x_real_time") -> str:
    """Markdown table of `key` (times faster than real time) per vocoder and case."""
    names = list(dict.fromkeys(row["vocoder"] for row in rows))
    header = "| vocoder | params | " + " | ".join(f"b{b} x {s:g} s" for b, s in CASES) + " |"
    lines = [header, "|" + "---|" * (2 + len(CASES))]
    params = parameter_counts()
    for name in names:
        cells = []
        for batch, seconds in CASES:
            row = next(r for r in rows if r["vocoder"] == name and r["batch"] == batch and r["seconds"] == seconds)
            seconds_key = "median_s" if key == "x_real_time" else "median_cpu_s"
            cells.append(f"{row[key]:.1f}x ({row[seconds_key] * 1e3:.1f} ms, n={row['repeats']})")
        lines.append(f"| {name} | {params.get(name, '-')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parameter_counts() -> dict[str, str]:
    counts = {}
    for name in (*HIFIGANS, "istft"):
        counts[name] = f"{build_generator(name, MEL_SPEC).num_parameters() / 1e6:.2f}M"
    counts["istft_vocos_size"] = f"{build_generator('istft', MEL_SPEC, **VOCOS_SIZE).num_parameters() / 1e6:.2f}M"
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timed runs per vocoder and case")
    parser.add_argument("--max-repeats", type=int, default=9)
    parser.add_argument(
        "--vocoder", action="append", default=[], help="a trained vocoder to time as users call it (repeatable)"
    )
    parser.add_argument("--bundled-only", action="store_true", help="leave out the untrained 22.05 kHz architectures")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "vocoder_speed.json")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    if load_before[0] > 0.5:
        print(f"note: load average {load_before[0]:.1f} before the run; other processes will slow every vocoder")
    rows = measure(args.budget, args.max_repeats, tuple(args.vocoder), args.bundled_only)
    load_after = os.getloadavg()
    by_case = {(r["batch"], r["seconds"]): {} for r in rows}
    for row in rows:
        by_case[(row["batch"], row["seconds"])][row["vocoder"]] = row["median_s"]
    speedups = {
        f"b{batch}x{seconds:g}s": times["hifigan_v1"] / times["istft"]
        for (batch, seconds), times in by_case.items()
        if "istft" in times
    }
    overhead = {  # what the user-facing call adds to the bare generator, in milliseconds
        f"b{batch}x{seconds:g}s": round(1e3 * (times[f"{BUNDLED} call"] - times[f"{BUNDLED} generator"]), 3)
        for (batch, seconds), times in by_case.items()
    }
    print()
    print(
        f"x real time (higher is faster); threads={args.threads}; {cpu_model()}; torch {torch.__version__}; "
        f"1-min load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(table(rows))
    print("\nx real time per second of process CPU time (the compute cost; robust to load at 1 thread)")
    print(table(rows, "x_real_time_per_cpu_second"))
    if speedups:
        print(
            "istft speed-up over hifigan_v1: " + ", ".join(f"{case} {value:.0f}x" for case, value in speedups.items())
        )
    print(
        f"{BUNDLED} call overhead over its generator (ms): "
        + ", ".join(f"{case} {value}" for case, value in overhead.items())
    )

    result = {
        "benchmark": "vocoder_speed",
        "command": command(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu_model": cpu_model(),
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "mel_spec": MEL_SPEC.to_dict(),
        "generator_configs": {name: build_generator(name, MEL_SPEC).config for name in (*HIFIGANS, "istft")},
        "parameters": parameter_counts(),
        "rows": rows,
        "istft_speedup_over_hifigan_v1": speedups,
        "bundled_call_overhead_ms": overhead,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
