"""Vocoder quality: HiFi-GAN V3 and the ISTFT generator trained for the same wall-clock budget on
the same data, then scored on held-out clips against Griffin-Lim (and, if given, a longer-trained
vocoder such as the bundled one), all on the same clips.

Metrics per clip, averaged: mel L1 (natural-log mel), multi-resolution STFT distance, and for
speech (the digits test split) F0 RMSE in cents and voiced/unvoiced F1 (pyin).
Training here uses the recipe's reconstruction losses (mel L1 x45 + multi-resolution STFT); the
GAN phase is left out because on 2 CPU cores one GAN step costs as much as ~20 reconstruction
steps, so a short equal budget is spent better without it.

    python benchmarks/vocoder_quality.py [--minutes 10] [--clips 40] [--extra vocoder-16k]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file: python benchmarks/vocoder_quality.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.audio import load_audio
from audiodiff.config import VocoderRunConfig, from_dict, load_yaml
from audiodiff.data.dataset import scan_items
from audiodiff.metrics.signal import f0_metrics, mel_l1, multi_resolution_stft_distance
from audiodiff.train.trainer import Trainer
from audiodiff.train.vocoder import VocoderTask
from audiodiff.vocoder import GriffinLimVocoder, Vocoder
from benchmarks.machine import command, machine_info, now, write_result

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "vocoder-16k" / "config.yaml"
GENERATORS = {"hifigan_v3": {}, "istft": {}}


def train(name: str, minutes: float, data: list[str], out_dir: Path) -> tuple[Vocoder, dict]:
    config = load_yaml(RECIPE)
    config["data"]["path"] = data
    config["model"]["generator"] = name
    config["model"]["generator_config"] = GENERATORS[name]
    config["loss"]["discriminator_start"] = 10**9  # reconstruction only (see the module docstring)
    config["train"].update(out_dir=str(out_dir), steps=10**9, max_minutes=minutes, preview_every=0, ckpt_every=10**6)
    run = from_dict(VocoderRunConfig, config)
    trainer = Trainer(VocoderTask(run, verbose=False), run.train, progress=True)
    trainer.fit()
    return Vocoder.from_pretrained(out_dir), {"steps": trainer.step, "train_seconds": round(trainer.wall_seconds, 1)}


def held_out(data: list[str], clips: int) -> dict[str, list[torch.Tensor]]:
    """`clips` test-split clips from each dataset (deterministic: evenly spaced)."""
    out = {}
    for path in data:
        config = from_dict(VocoderRunConfig, {"data": {"path": path, "split": "test", "representation": "wave"}}).data
        items, _ = scan_items(config)
        chosen = items[:: max(1, len(items) // clips)][:clips]
        out[Path(path).name] = [load_audio(item.path, 16000, 1)[0][0, : 16000 // 256 * 256] for item in chosen]
    return out


@torch.inference_mode()
def score(vocoder, clips: dict[str, list[torch.Tensor]]) -> dict:
    mel_spec = vocoder.mel_spec
    result = {}
    for name, audios in clips.items():
        reference = torch.stack(audios)
        estimate = torch.cat([vocoder.round_trip(reference[i : i + 8]) for i in range(0, len(reference), 8)])[:, 0]
        row = {
            "mel_l1": mel_l1(estimate, reference, mel_spec).mean().item(),
            "mr_stft": multi_resolution_stft_distance(estimate, reference).mean().item(),
        }
        if name == "digits":
            f0 = f0_metrics(estimate, reference, mel_spec.sample_rate, fmin=60.0, fmax=500.0)
            cents = [v for v in f0["f0_rmse_cents"].tolist() if v == v]
            row["f0_rmse_cents"] = statistics.mean(cents) if cents else None
            row["vuv_f1"] = f0["vuv_f1"].mean().item()
        result[name] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per generator")
    parser.add_argument("--clips", type=int, default=40, help="held-out clips per dataset")
    parser.add_argument("--data", default="data/digits,data/notes")
    parser.add_argument("--extra", action="append", default=[], help="also score this vocoder (dir or bundled name)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/vocoder_quality.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = args.data.split(",")
    clips = held_out(data, args.clips)
    rows = {"griffin_lim_32": {"scores": score(GriffinLimVocoder(from_dict(VocoderRunConfig, {}).mel), clips)}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in GENERATORS:
            vocoder, info = train(name, args.minutes, data, Path(tmp) / name)
            rows[name] = {
                "training": info,
                "parameters": vocoder.generator.num_parameters(),
                "scores": score(vocoder, clips),
            }
    for extra in args.extra:
        vocoder = Vocoder.from_pretrained(extra)
        rows[f"extra:{extra}"] = {"training": vocoder.info.get("training"), "scores": score(vocoder, clips)}
    result = {
        "benchmark": "vocoder_quality",
        "date": now(),
        "command": command(),
        "budget_minutes_per_generator": args.minutes,
        "held_out": {name: len(audios) for name, audios in clips.items()},
        "machine": machine_info(),
        "results": rows,
    }
    write_result(result, args.out)
    for name, row in rows.items():
        for dataset, scores in row["scores"].items():
            print(f"{name:>24} {dataset:>8} " + " ".join(f"{k}={v}" for k, v in scores.items()))


if __name__ == "__main__":
    main()
