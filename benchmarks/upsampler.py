"""The GAN upsampler on held-out real recordings, as the audio super-resolution papers measure it
(NU-Wave, AudioSR): each 44.1 kHz clip is taken to 16 kHz (what a 16 kHz model could make), then
back to 44.1 kHz by plain resampling and by the upsampler, and both are scored against the clip by
log-spectral distance (`audiodiff.upsampler.log_spectral_distance`: n_fft 2048, hop 512, log10
power) over the added band (8-22.05 kHz), the kept band (0-7 kHz, where the input passes through)
and the whole. Speed: batch 1 x 10 s, the upsampler against plain resampling, in the same run.

Sets: held-out drum kits (the drums set's valid and test splits) and held-out music tracks (the
music set's test split); stereo is mixed to mono. Targets (issue 42): LSD over 8-22 kHz at least
30% below plain resampling's, and >= 100x real time at batch 1 x 10 s.

    python benchmarks/upsampler.py --upsampler runs/upsampler-44k [--per-set 40] [--figure docs/examples/upsampler.png]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from audiodiff.audio import load_audio, resample  # noqa: E402
from audiodiff.plots import plot_spectrograms  # noqa: E402
from audiodiff.upsampler import Upsampler, log_spectral_distance  # noqa: E402
from benchmarks.machine import command, machine_info, now, write_result  # noqa: E402

SETS = {  # name -> (folder, held-out splits)
    "drums (held-out kits)": ("data/drums", ("valid", "test")),
    "music (held-out tracks)": ("data/music", ("test",)),
}
BANDS = {"added 8-22 kHz": (8000.0, None), "kept 0-7 kHz": (0.0, 7000.0), "whole": (0.0, None)}


def held_out(folder: str, splits: tuple[str, ...], count: int) -> list[Path]:
    rows = [json.loads(line) for line in Path(folder, "manifest.jsonl").read_text().splitlines() if line.strip()]
    paths = [Path(folder) / row["path"] for row in rows if row.get("split") in splits]
    return paths[:: max(1, len(paths) // count)][:count]


def score_set(upsampler: Upsampler, paths: list[Path], max_seconds: float, examples: list) -> dict:
    rate, low = upsampler.sample_rate, upsampler.input_rate
    scores = {method: {band: [] for band in BANDS} for method in ("plain", "upsampler")}
    for path in tqdm(paths, desc="clips", leave=False):
        clip = load_audio(path, rate, channels=1)[0][None, ..., : int(max_seconds * rate)]
        narrow = resample(clip, rate, low)
        made = {"plain": resample(narrow, low, rate)[..., : clip.shape[-1]], "upsampler": upsampler(narrow, low)}
        for method, audio in made.items():
            for band, (first, last) in BANDS.items():
                scores[method][band].append(log_spectral_distance(audio, clip, rate, first, last))
        if len(examples) < 4 and clip.shape[-1] >= rate // 2:
            examples.append((path.name, made["plain"], made["upsampler"], clip))
    return {
        method: {band: round(statistics.fmean(values), 4) for band, values in bands.items()}
        for method, bands in scores.items()
    } | {"clips": len(paths)}


def speed(upsampler: Upsampler, seconds: float = 10.0, repeats: int = 5) -> dict:
    """Seconds of 44.1 kHz output per second of compute at batch 1, median of `repeats`."""
    audio = torch.randn(1, 1, int(seconds * upsampler.input_rate)) * 0.1
    timings = {}
    for name, run in (
        ("plain", lambda: resample(audio, upsampler.input_rate, upsampler.sample_rate)),
        ("upsampler", lambda: upsampler(audio, upsampler.input_rate)),
    ):
        run()  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        timings[name] = {
            "seconds": round(statistics.median(times), 4),
            "x_real_time": round(seconds / statistics.median(times), 1),
        }
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upsampler", default="upsampler-44k", help="an upsampler checkpoint, run or bundled name")
    parser.add_argument("--per-set", type=int, default=40)
    parser.add_argument("--max-seconds", type=float, default=4.0, help="clips are cut to this length")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--figure", help="a PNG of example spectrograms: plain, upsampled, real")
    parser.add_argument("--out", default="benchmarks/results/upsampler.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    upsampler = Upsampler.from_pretrained(args.upsampler)
    results, examples = {}, []
    for name, (folder, splits) in SETS.items():
        if not Path(folder, "manifest.jsonl").is_file():
            print(f"{name}: {folder} is not built (audiodiff data ... --out {folder}); left out", file=sys.stderr)
            continue
        results[name] = score_set(upsampler, held_out(folder, splits, args.per_set), args.max_seconds, examples)
        print(f"{name}: {results[name]}")
    timing = speed(upsampler)
    print(f"speed, batch 1 x 10 s: {timing}")
    band = "added 8-22 kHz"
    targets = {
        name: {
            "lsd_added_band_below_plain": round(1 - row["upsampler"][band] / row["plain"][band], 3),
            "met": row["upsampler"][band] <= 0.7 * row["plain"][band],
        }
        for name, row in results.items()
    } | {"speed": {"x_real_time": timing["upsampler"]["x_real_time"], "met": timing["upsampler"]["x_real_time"] >= 100}}
    if args.figure and examples:
        clips, titles = [], []
        for name, plain, ours, real in examples:
            clips += [plain[0], ours[0], real[0]]
            titles += [f"plain resampling: {name}", "upsampler-44k", "the clip"]
        plot_spectrograms(clips, upsampler.sample_rate, args.figure, titles, columns=3)
        print(f"wrote {args.figure}")
    write_result(
        {
            "benchmark": "upsampler",
            "date": now(),
            "command": command(),
            "machine": machine_info(),
            "upsampler": args.upsampler,
            "figure": args.figure if args.figure and examples else None,
            "upsampler_info": {k: v for k, v in upsampler.info.items() if k in ("training",)},
            "lsd": "log10 power, n_fft 2048, hop 512, eps 1e-8; mean over frames of the RMS over the band's bins",
            "results": results,
            "speed_batch1_10s": timing,
            "targets": targets,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
