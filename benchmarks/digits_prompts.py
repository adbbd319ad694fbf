"""Do captions steer the digits model? Pairs of prompts that differ in one word, with the same
digit and seed: "slowly" against "quickly" (the spoken part should be longer), and a "high"
against a "low" voice (the median F0 should be higher). Target: the asked direction in at least
90% of pairs. The same measures on pairs of real test clips (same digit and gender, captioned
slow/quick or high/low) are the floor: how often the measure itself agrees with the captions.

The spoken part is the span where the frame energy is within 30 dB of the clip's loudest frame;
F0 is the median autocorrelation pitch of the loud periodic frames, searched in 75-500 Hz
(see median_f0 for why not pyin).

    python benchmarks/digits_prompts.py [--model digits] [--pairs 20]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a file: python benchmarks/digits_prompts.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.pipeline import Pipeline
from benchmarks.machine import command, machine_info, now, write_result

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = ["American", "British", "Scottish", "Caribbean"]


def spoken_seconds(audio: torch.Tensor, sample_rate: int, hop: int = 160) -> float:
    frames = audio.reshape(-1)[: audio.numel() // hop * hop].reshape(-1, hop).pow(2).mean(-1)
    level = 10 * torch.log10(frames + 1e-10)
    active = (level > level.max() - 30).nonzero().flatten()
    return 0.0 if active.numel() == 0 else float((active[-1] - active[0] + 1) * hop / sample_rate)


def median_f0(audio: torch.Tensor, sample_rate: int, frame: int = 640, hop: int = 160) -> float:
    """Median F0 (Hz) of the loud, periodic frames: the autocorrelation peak between 2 ms and
    13.3 ms (75-500 Hz) of each 40 ms frame within 20 dB of the loudest, kept when the peak
    reaches 0.3 of the frame's energy. Cruder than pyin, but pyin finds few voiced frames in
    vocoded audio and locks onto its 62.5 Hz frame-rate buzz (16 kHz / hop 256)."""
    x = audio.reshape(-1).float()
    frames = x[: (x.numel() - frame) // hop * hop + frame].unfold(0, frame, hop)
    frames = frames - frames.mean(-1, keepdim=True)
    energy = frames.pow(2).sum(-1)
    loud = 10 * torch.log10(energy + 1e-10) > 10 * torch.log10(energy.max() + 1e-10) - 20
    spectrum = torch.fft.rfft(frames, n=2 * frame)
    correlation = torch.fft.irfft(spectrum.abs().pow(2), n=2 * frame)[:, :frame]
    low, high = sample_rate // 500, sample_rate // 75
    peak, lag = correlation[:, low:high].max(-1)
    periodic = loud & (peak > 0.3 * correlation[:, 0])
    if not periodic.any():
        return math.nan
    return float(sample_rate / (lag[periodic] + low).float().median())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="digits")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--data", default="data/digits", help="for the measures' floor on real clips")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/digits_prompts.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = Pipeline.from_pretrained(args.model)
    rate = pipe.config.data.sample_rate
    tests = {
        "speed": (
            "said slowly in a medium-pitched {gender} voice",
            "said quickly in a medium-pitched {gender} voice",
            spoken_seconds,
        ),
        "pitch": (
            "said at a normal pace in a high {gender} voice",
            "said at a normal pace in a low {gender} voice",
            median_f0,
        ),
    }
    results = {}
    for name, (first, second, measure) in tests.items():
        wins, rows = 0, []
        for index in tqdm(range(args.pairs), desc=name):
            digit, gender, accent = DIGITS[index % 10], ["female", "male"][index % 2], ACCENTS[index % len(ACCENTS)]
            values = []
            for template in (first, second):
                text = f"the word {digit}, {template.format(gender=gender)} ({accent} accent)"
                out = pipe.generate(label=digit, text=text, n=1, seed=1000 + index, progress=False)
                values.append(measure(out.audio[0], rate))
            win = values[0] > values[1]
            wins += win
            rows.append(
                {
                    "digit": digit,
                    "gender": gender,
                    "accent": accent,
                    "values": [round(v, 3) for v in values],
                    "asked_direction": bool(win),
                }
            )
        results[name] = {
            "pairs": args.pairs,
            "asked_direction": round(wins / args.pairs, 3),
            "measure": "spoken seconds (slowly > quickly)" if name == "speed" else "median F0 Hz (high > low)",
            "rows": rows,
        }
    # the measures' own floor: real test clips of the same digit and gender, slow vs quick, high vs low
    from audiodiff.audio import load_audio

    manifest = Path(args.data) / "manifest.jsonl"
    real = [row for row in map(json.loads, manifest.read_text().splitlines()) if row.get("split") == "test"]

    def real_pairs(key: str, first: str, second: str, measure) -> float:
        wins = total = 0
        for digit in DIGITS:
            for gender in ("female", "male"):
                a = [r for r in real if r["label"] == digit and r["gender"] == gender and r[key] == first][:2]
                b = [r for r in real if r["label"] == digit and r["gender"] == gender and r[key] == second][:2]
                for x, y in zip(a, b):
                    values = [measure(load_audio(manifest.parent / r["path"], rate, 1)[0], rate) for r in (x, y)]
                    wins += values[0] > values[1]
                    total += 1
        return round(wins / max(1, total), 3)

    results["speed"]["real_clips_asked_direction"] = real_pairs("speed", "slowly", "quickly", spoken_seconds)
    results["pitch"]["real_clips_asked_direction"] = real_pairs("pitch_class", "high", "low", median_f0)
    output = {
        "benchmark": "digits_prompts",
        "date": now(),
        "command": command(),
        "model": args.model,
        "training_step": pipe.info.get("training", {}).get("step"),
        "target": "asked direction in at least 90% of pairs",
        "machine": machine_info(),
        "results": results,
    }
    write_result(output, args.out)
    print({name: (r["asked_direction"], r["real_clips_asked_direction"]) for name, r in results.items()})


if __name__ == "__main__":
    main()
