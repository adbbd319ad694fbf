"""Pure tones through vocoders: does a sine come back at its own frequency?

Each vocoder gets 1 s sines (110 Hz to 3 kHz, amplitude 0.5) at its own rate, round-tripped through
its mel (`Vocoder.round_trip`); Griffin-Lim on the same mel is the baseline. Reports the loudest
frequency of the middle half of the output (a zero-padded FFT, 0.25 Hz bins) and its error in cents.
A vocoder that matches magnitudes but not the phase advance between frames puts the tone in the
right bin at the wrong frequency, which no magnitude loss sees and every pitch tracker does.

    python benchmarks/vocoder_tones.py --vocoder runs/vocoder-44k [--vocoder vocoder-16k] [--out F]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a file: python benchmarks/vocoder_tones.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.vocoder import GriffinLimVocoder, Vocoder
from benchmarks.machine import command, machine_info, now, write_result

TONES = (110.0, 220.0, 440.0, 1000.0, 3000.0)


def loudest_frequency(audio: np.ndarray, rate: int) -> float:
    """The frequency of the largest peak of the middle half of `audio` (Hann window, zero-padded to
    0.25 Hz bins)."""
    middle = audio[len(audio) // 4 : 3 * len(audio) // 4]
    size = 4 * rate
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle)), n=size))
    return float(np.argmax(spectrum) * rate / size)


def cents(frequency: float, reference: float) -> float:
    return 1200 * math.log2(max(frequency, 1e-9) / reference)


def tones(vocoder: Vocoder) -> dict[str, dict]:
    rate = vocoder.mel_spec.sample_rate
    t = torch.arange(rate) / rate
    out = {}
    for tone in TONES:
        audio = vocoder.round_trip((0.5 * torch.sin(2 * math.pi * tone * t))[None])[0, 0].numpy()
        found = loudest_frequency(audio, rate)
        out[f"{tone:g}"] = {"found_hz": round(found, 2), "error_cents": round(cents(found, tone), 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocoder", action="append", required=True, help="a vocoder directory or bundled name")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/vocoder_tones.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for name in args.vocoder:
        vocoder = Vocoder.from_pretrained(name)
        baseline = GriffinLimVocoder(vocoder.mel_spec)
        results[name] = {"vocoder": tones(vocoder), "griffin_lim": tones(baseline)}
        worst = max(abs(row["error_cents"]) for row in results[name]["vocoder"].values())
        results[name]["worst_error_cents"] = worst
    print(json.dumps(results, indent=1))
    write_result(
        {
            "benchmark": "vocoder_tones",
            "date": now(),
            "command": command(),
            "machine": machine_info(),
            "tones_hz": list(TONES),
            "results": results,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
