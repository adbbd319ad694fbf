"""Vocoders on real recordings, measured as the field measures them: held-out speakers (the voices
set's test split: speakers never trained on), held-out drum kits and held-out music tracks, each
clip through the vocoder's mel and back, beside our Griffin-Lim and librosa's (32 iterations) in
the same run.

Scores per set: wideband PESQ (ITU-T P.862.2, the `pesq` package, 16 kHz) and STOI (`pystoi`) on
speech; multi-resolution STFT distance; log-mel L1 with a floor 60 dB below each clip's peak; the
share of the original's voiced frames (pYIN) whose F0 in the round trip is within 20 cents; and
the real-time factor of the round trip (seconds of audio per second of compute, mel included).
Sets recorded at other rates are resampled to the vocoder's; stereo is mixed to mono. Targets
(issue 40): PESQ >= 3.3 on held-out speakers, F0 >= 90%, MR-STFT and log-mel L1 each 30% below
the better Griffin-Lim.

    python benchmarks/vocoder_real.py --vocoder vocoder-16k [--vocoder runs/other] [--per-set 30]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a file: python benchmarks/vocoder_real.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.audio import MelSpec, load_audio
from audiodiff.metrics.sets import load_clips
from audiodiff.metrics.signal import multi_resolution_stft_distance
from audiodiff.vocoder import Vocoder
from benchmarks.machine import command, machine_info, now, write_result
from benchmarks.vocoder_fidelity import LibrosaGriffinLim, evenly, f0_agreement, mel_l1_60db

SETS = {  # name -> (data folder, split, speech: PESQ and STOI apply)
    "held-out speakers": ("data/voices", "test", True),
    "held-out kits": ("data/drums", "test", False),
    "held-out tracks": ("data/music", "test", False),
}
TARGETS = {"pesq_wb": 3.3, "f0_within_20_cents": 0.90, "reduction_vs_griffin_lim": 0.30}


def clip_frames(path, spec: MelSpec, max_seconds: float) -> torch.Tensor:
    """A clip `[1, samples]` at the vocoder's rate, mono, at most `max_seconds`, whole hops."""
    audio = load_audio(path, spec.sample_rate, 1)[0][:, : int(max_seconds * spec.sample_rate)]
    return audio[:, : audio.shape[-1] // spec.hop_length * spec.hop_length]


def speech_scores(estimate: torch.Tensor, reference: torch.Tensor, rate: int) -> dict:
    """Wideband PESQ and STOI of one clip (both at 16 kHz, as the packages define them)."""
    from pesq import pesq
    from pystoi import stoi

    from audiodiff.audio import resample

    if rate != 16000:
        estimate, reference = resample(estimate, rate, 16000), resample(reference, rate, 16000)
    ref, est = reference.reshape(-1).double().numpy(), estimate.reshape(-1).double().numpy()
    try:
        quality = pesq(16000, ref, est, "wb")
    except Exception:  # the pesq package refuses clips without an utterance it can find
        quality = float("nan")
    return {"pesq_wb": quality, "stoi": stoi(ref, est, 16000, extended=False)}


def score_set(vocoder, paths: list, spec: MelSpec, speech: bool, max_seconds: float) -> dict:
    scores: dict[str, list] = {"mel_l1_60db": [], "mr_stft": []}
    if speech:
        scores.update(pesq_wb=[], stoi=[])
    good = voiced = 0
    audio_seconds = compute_seconds = 0.0
    for path in tqdm(paths, desc=getattr(vocoder, "kind", "vocoder"), leave=False):
        audio = clip_frames(path, spec, max_seconds)
        started = time.perf_counter()
        with torch.inference_mode():
            estimate = vocoder.round_trip(audio)[0][..., : audio.shape[-1]]
        compute_seconds += time.perf_counter() - started
        audio_seconds += audio.shape[-1] / spec.sample_rate
        scores["mel_l1_60db"].append(mel_l1_60db(estimate, audio, spec))
        scores["mr_stft"].append(multi_resolution_stft_distance(estimate, audio).mean().item())
        if speech:
            for key, value in speech_scores(estimate, audio, spec.sample_rate).items():
                scores[key].append(value)
        g, v = f0_agreement(estimate[0], audio[0], spec.sample_rate, (str(path), 0.0))
        good, voiced = good + g, voiced + v
    result = {key: round(float(np.nanmean(values)), 4) for key, values in scores.items()}
    result["f0_within_20_cents"] = round(good / max(1, voiced), 4)
    result["real_time_factor"] = round(audio_seconds / max(compute_seconds, 1e-9), 1)
    result["clips"] = len(paths)
    return result


def verdicts(results: dict, names: list[str]) -> dict:
    """Each trained vocoder's targets per set: met or missed, with the number."""
    out = {}
    for name in names:
        for set_name, per_vocoder in results.items():
            ours = per_vocoder[name]
            best_gl = {
                key: min(per_vocoder[g][key] for g in ("griffin_lim", "griffin_lim_librosa"))
                for key in ("mr_stft", "mel_l1_60db")
            }
            checks = {
                f"{key} {TARGETS['reduction_vs_griffin_lim']:.0%} below Griffin-Lim": {
                    "value": round(1 - ours[key] / best_gl[key], 3),
                    "met": ours[key] <= (1 - TARGETS["reduction_vs_griffin_lim"]) * best_gl[key],
                }
                for key in ("mr_stft", "mel_l1_60db")
            }
            if "pesq_wb" in ours:
                checks["pesq_wb >= 3.3"] = {"value": ours["pesq_wb"], "met": ours["pesq_wb"] >= TARGETS["pesq_wb"]}
                checks["f0 within 20 cents >= 90%"] = {
                    "value": ours["f0_within_20_cents"],
                    "met": ours["f0_within_20_cents"] >= TARGETS["f0_within_20_cents"],
                }
            out[f"{name} / {set_name}"] = checks
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocoder", action="append", required=True, help="a vocoder directory or bundled name")
    parser.add_argument("--per-set", type=int, default=30)
    parser.add_argument("--max-seconds", type=float, default=4.0, help="clips are cut to this length")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/vocoder_real.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*rank-deficient")
    vocoders = [Vocoder.from_pretrained(name) for name in args.vocoder]
    spec = vocoders[0].mel_spec
    for name, vocoder in zip(args.vocoder, vocoders):
        if vocoder.mel_spec.diff(spec):
            raise SystemExit(f"{name}: its MelSpec differs from {args.vocoder[0]}'s; compare vocoders of one MelSpec")
    names = list(args.vocoder)
    vocoders += [Vocoder.from_pretrained("griffin_lim", mel_spec=spec), LibrosaGriffinLim(spec)]
    all_names = [*names, "griffin_lim", "griffin_lim_librosa"]
    results = {}
    for set_name, (folder, split, speech) in SETS.items():
        if not Path(folder, "manifest.jsonl").is_file():
            print(f"{set_name}: {folder} is not built (audiodiff data ... --out {folder}); left out", file=sys.stderr)
            continue
        clips = evenly(load_clips(folder, split=split), args.per_set)
        results[set_name] = {
            name: score_set(vocoder, clips.paths, spec, speech, args.max_seconds)
            for name, vocoder in zip(all_names, vocoders)
        }
        for name, row in results[set_name].items():
            print(f"{set_name:18s} {name:28s} " + "  ".join(f"{k} {v}" for k, v in row.items()))
    checks = verdicts(results, names)
    met = sum(check["met"] for group in checks.values() for check in group.values())
    total = sum(len(group) for group in checks.values())
    print(f"targets met: {met} of {total}")
    write_result(
        {
            "benchmark": "vocoder_real",
            "date": now(),
            "command": command(),
            "machine": machine_info(),
            "mel_spec": spec.to_dict(),
            "per_set": args.per_set,
            "results": results,
            "targets": checks,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
