"""F0 trackers for control curves: torchcrepe (tiny and full) against librosa's pYIN, on rendered
notes whose pitch is known (the notes builder's held notes of the test split) and, on speech
(the digits set), how far the trackers agree with each other and how much they call voiced.

Per method: the fraction of sounding frames (loudness above -40 dB, within the note's hold)
within 50 cents of the note's pitch (an unvoiced sounding frame counts as a miss), the median
error in cents, and the seconds per one-second clip (after a warm-up clip, so model loading and
JIT are not counted). Writes JSON.

    python -m benchmarks.controls --notes data/notes --digits data/digits --count 120 --out benchmarks/results/controls.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import soundfile
from tqdm.auto import tqdm

from audiodiff import controls
from benchmarks.machine import command, machine_info, now, write_result

METHODS = ("pyin", "crepe", "crepe-full")
HOLD_FRACTION = 0.7  # of a one-second note (held 0.75 s): the frames before the release


def rows_of(folder: Path, count: int, held_only: bool) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    rows = [
        row for row in rows if row.get("split") == "test" and (not held_only or row.get("gesture", "none") == "none")
    ]
    step = max(1, len(rows) // count)
    return rows[::step][:count]


def score_notes(folder: Path, count: int) -> dict:
    rows = rows_of(folder, count, held_only=True)
    out = {}
    for method in METHODS:
        audio, rate = soundfile.read(folder / rows[0]["path"], dtype="float32")
        controls.extract_f0(audio, rate, method=method)  # warm-up
        within, errors, seconds = [], [], 0.0
        for row in tqdm(rows, desc=f"notes {method}", leave=False):
            audio, rate = soundfile.read(folder / row["path"], dtype="float32")
            start = time.perf_counter()
            f0 = controls.extract_f0(audio, rate, method=method)
            seconds += time.perf_counter() - start
            level = controls.extract_loudness(audio, rate)
            frames = np.arange(len(f0)) < len(f0) * HOLD_FRACTION
            sounding = frames & (level > -40)
            cents = 1200 * np.abs(np.log2(np.maximum(f0[sounding], 1e-3) / controls.midi_to_hz(row["pitch"])))
            within.append(float((cents < 50).mean()) if cents.size else 0.0)
            errors.extend(cents[f0[sounding] > 0].tolist())
        out[method] = {
            "frames_within_50_cents": float(np.mean(within)),
            "clips_with_90pct_frames_within_50_cents": float(np.mean(np.array(within) >= 0.9)),
            "median_cents_voiced": float(np.median(errors)) if errors else None,
            "seconds_per_clip": seconds / len(rows),
        }
    return {"clips": len(rows), "methods": out}


def score_digits(folder: Path, count: int) -> dict:
    rows = rows_of(folder, count, held_only=False)
    curves = {method: [] for method in METHODS}
    for row in tqdm(rows, desc="digits", leave=False):
        audio, rate = soundfile.read(folder / row["path"], dtype="float32")
        for method in METHODS:
            curves[method].append(controls.extract_f0(audio, rate, method=method))
    out = {}
    for method in METHODS:
        f0 = np.concatenate(curves[method])
        out[method] = {"voiced_fraction": float((f0 > 0).mean())}
        for other in METHODS:
            if other <= method:
                continue
            g = np.concatenate(curves[other])
            both = (f0 > 0) & (g > 0)
            cents = 1200 * np.abs(np.log2(f0[both] / g[both]))
            out[method][f"agrees_with_{other}_within_50_cents"] = float((cents < 50).mean()) if both.any() else None
            out[method][f"voicing_agreement_with_{other}"] = float(((f0 > 0) == (g > 0)).mean())
    return {"clips": len(rows), "methods": out}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", default="data/notes")
    parser.add_argument("--digits", default=None, help="a digits build (optional): tracker agreement on speech")
    parser.add_argument("--count", type=int, default=120)
    parser.add_argument("--out", default="benchmarks/results/controls.json")
    args = parser.parse_args(argv)
    result = {
        "benchmark": "controls",
        "date": now(),
        "command": command(),
        "notes": score_notes(Path(args.notes), args.count),
    }
    if args.digits:
        result["digits"] = score_digits(Path(args.digits), args.count // 2)
    result["machine"] = machine_info(("torchcrepe", "librosa"))
    write_result(result, args.out)
    print(json.dumps({k: v for k, v in result.items() if k not in ("machine",)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
