"""Latent against mel U-Nets at matched width: FLOPs (counted by `torch.utils.flop_counter`) and
seconds per training step and per sampling step, for the digits-mel U-Net on its mel (80 bands x
62 frames, patch 2: the baseline, in the same run) and on the latents of candidate autoencoder
shapes (channels x time and frequency factors), with patch 2 and patch 1.

With `--autoencoder RUN`, also the round trip of real held-out clips through that autoencoder and
the vocoder against the vocoder alone: mel L1, multi-resolution STFT distance and (with
`--classifier`) the evaluation classifier's Fréchet distance over the real floor.

    python -m benchmarks.latent_vs_mel [--autoencoder runs/mel-vae-16k --data data/notes --classifier runs/classifier-notes] [--rounds 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from audiodiff.config import DiffusionRunConfig, from_dict, load_yaml
from audiodiff.models.unet import UNet
from benchmarks.machine import command, machine_info, now, write_result

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "digits-mel" / "config.yaml"
# (latent channels, time factor, frequency factor): the recipe's choice first
SHAPES = [(4, 4, 4), (8, 4, 2), (8, 8, 4), (16, 8, 8)]
BATCH_TRAIN, BATCH_SAMPLE = 16, 2  # sampling: a guided pass is batch 2 at n=1


def unet(config: DiffusionRunConfig, channels: int, patch: int) -> UNet:
    torch.manual_seed(0)
    model_config = dataclasses.replace(config.model, in_channels=channels, patch_size=patch)
    return UNet(
        model_config, dataclasses.replace(config.conditioning, labels=[str(i) for i in range(10)], text=None), None
    )


def flops(model: UNet, x: torch.Tensor, backward: bool) -> int:
    with FlopCounterMode(display=False) as counter:
        out = model(x, torch.rand(x.shape[0]), {"label": torch.zeros(x.shape[0], dtype=torch.long)})
        if backward:
            out.float().pow(2).mean().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def seconds(model: UNet, x: torch.Tensor, train: bool) -> float:
    labels = {"label": torch.zeros(x.shape[0], dtype=torch.long)}
    start = time.perf_counter()
    if train:
        model(x, torch.rand(x.shape[0]), labels).pow(2).mean().backward()
        model.zero_grad(set_to_none=True)
    else:
        with torch.inference_mode():
            model(x, torch.rand(x.shape[0]), labels)
    return time.perf_counter() - start


def cases(config: DiffusionRunConfig) -> dict:
    frames = config.mel.num_frames(int(config.data.segment_seconds * config.data.sample_rate))
    bands = config.mel.n_mels
    out = {"mel (baseline)": (1, bands, frames, config.model.patch_size)}
    for channels, time_down, freq_down in SHAPES:
        for patch in (2, 1):
            out[f"latent {channels}x{bands // freq_down}x{-(-frames // time_down)}, patch {patch}"] = (
                channels,
                bands // freq_down,
                -(-frames // time_down),
                patch,
            )
    return out


def speed(config: DiffusionRunConfig, rounds: int) -> list[dict]:
    built = {}
    for name, (channels, bands, frames, patch) in cases(config).items():
        model = unet(config, channels, patch)
        built[name] = (
            model,
            torch.randn(BATCH_TRAIN, channels, bands, frames),
            torch.randn(BATCH_SAMPLE, channels, bands, frames),
        )
    times = {name: {"train": [], "sample": []} for name in built}
    for model, train_x, sample_x in built.values():  # warm-up
        seconds(model, train_x, True), seconds(model, sample_x, False)
    for _ in range(rounds):  # interleaved, so background load hits every case alike
        for name, (model, train_x, sample_x) in built.items():
            times[name]["train"].append(seconds(model, train_x, True))
            times[name]["sample"].append(seconds(model, sample_x, False))
    rows = []
    for name, (model, train_x, sample_x) in built.items():
        rows.append(
            {
                "case": name,
                "input": list(sample_x.shape[1:]),
                "elements": int(sample_x[0].numel()),
                "parameters": sum(p.numel() for p in model.parameters()),
                "train_gflop_per_step": round(flops(model, train_x, True) / 1e9, 2),
                "sample_gflop_per_call": round(flops(model, sample_x, False) / 1e9, 3),
                "train_s_per_step": round(statistics.median(times[name]["train"]), 4),
                "sample_ms_per_call": round(1000 * statistics.median(times[name]["sample"]), 2),
            }
        )
    base = rows[0]
    for row in rows:
        row["flops_fewer_x"] = round(base["sample_gflop_per_call"] / row["sample_gflop_per_call"], 2)
        row["train_faster_x"] = round(base["train_s_per_step"] / row["train_s_per_step"], 2)
        row["sample_faster_x"] = round(base["sample_ms_per_call"] / row["sample_ms_per_call"], 2)
    return rows


class ThroughAutoencoder:
    """audio -> mel -> autoencoder round trip -> vocoder: what a latent model's real clips sound like."""

    def __init__(self, autoencoder, vocoder):
        self.autoencoder, self.vocoder, self.kind = autoencoder, vocoder, "autoencoder + vocoder"

    def round_trip(self, audio: torch.Tensor) -> torch.Tensor:
        mel = self.vocoder.mel_spec(audio)
        return self.vocoder(self.autoencoder.round_trip(mel[:, None])[:, 0])


def round_trip(autoencoder_path: str, data: str, count: int, classifier_path: str | None) -> dict:
    """Held-out clips through the vocoder alone and through autoencoder then vocoder: mel L1
    (60 dB floor, and plain), multi-resolution STFT, and with a classifier the Fréchet distance
    over the real floor (benchmarks/vocoder_fidelity.py's measures)."""
    from audiodiff.latent import Autoencoder
    from audiodiff.metrics import AudioClassifier
    from audiodiff.metrics.sets import load_clips
    from audiodiff.vocoder import Vocoder
    from benchmarks.vocoder_fidelity import evenly, frechet_over_floor, vocode_set

    autoencoder = Autoencoder.from_pretrained(autoencoder_path)
    vocoder = Vocoder.from_pretrained("vocoder-16k", autoencoder.mel_spec)
    clips = evenly(load_clips(data, split="test"), count)
    classifier = AudioClassifier.load(classifier_path) if classifier_path else None
    out = {"data": data, "clips": len(clips.paths), "autoencoder": autoencoder_path, "vocoder": "vocoder-16k"}
    for name, system in (
        ("vocoder only", vocoder),
        ("autoencoder + vocoder", ThroughAutoencoder(autoencoder, vocoder)),
    ):
        scores, outputs = vocode_set(system, clips, autoencoder.mel_spec, 0.0, pitch=False)
        if classifier is not None:
            scores["frechet"] = frechet_over_floor(classifier, outputs, clips, data, autoencoder.mel_spec.sample_rate)
        out[name] = scores
    if classifier is not None:
        out["frechet_vs_vocoder_only"] = round(
            out["autoencoder + vocoder"]["frechet"]["vocoded"] / out["vocoder only"]["frechet"]["vocoded"], 3
        )
        out["target"] = "autoencoder + vocoder within 1.2x the vocoder-only Fréchet distance"
        out["met"] = out["frechet_vs_vocoder_only"] <= 1.2
    return out


EQUAL_TIME_SCORES = ("frechet_classifier", "accuracy", "recall_classifier", "coverage_classifier")


def equal_time(prefix: str) -> dict:
    """The like-for-like digits comparison of scripts/digits-equal-time: digits-mel and
    digits-latent trained from scratch for the same minutes of training loop, evaluated by one
    classifier on the same held-out clips (PREFIX-{latent,mel,bundled}/metrics.json), beside the
    bundled digits; each with its training steps and minutes (from its checkpoint's config.json)."""
    from audiodiff.bundled import find_checkpoint

    out = {"source": f"{prefix}-*/metrics.json (scripts/digits-equal-time)", "models": {}}
    for name in ("latent", "mel", "bundled"):
        metrics_file = Path(f"{prefix}-{name}") / "metrics.json"
        if not metrics_file.is_file():
            continue
        metrics = json.loads(metrics_file.read_text())
        checkpoint = metrics["sampling"]["checkpoint"]
        training = json.loads((find_checkpoint(checkpoint, lambda: "") / "config.json").read_text()).get("training", {})
        row = {
            "checkpoint": checkpoint,
            "training_steps": training.get("step"),
            "training_minutes": round(training.get("wall_seconds", 0) / 60, 1),
        }
        for score in metrics["scores"]:
            if score["score"] in EQUAL_TIME_SCORES:
                row[score["score"]] = round(score["model"], 4)
                row[f"{score['score']}_floor"] = round(score["floor"], 4) if score.get("floor") is not None else None
        out["models"][name] = row
    models = out["models"]
    if "latent" in models and "mel" in models:
        latent, mel = models["latent"], models["mel"]
        out["latent_at_least_as_good"] = (
            latent["frechet_classifier"] <= mel["frechet_classifier"] and latent["accuracy"] >= mel["accuracy"]
        )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--autoencoder", help="a trained autoencoder run: adds the round trip of real held-out clips")
    parser.add_argument("--data", default="data/digits")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--classifier", help="an evaluation classifier run for --data: adds the Fréchet distance")
    parser.add_argument(
        "--skip-speed", action="store_true", help="only the round trip (the U-Net timings want a quiet machine)"
    )
    parser.add_argument(
        "--equal-time",
        metavar="PREFIX",
        help="add scripts/digits-equal-time's comparison (PREFIX-{latent,mel,bundled}/metrics.json)",
    )
    parser.add_argument("--out", default="benchmarks/results/latent_vs_mel.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = from_dict(DiffusionRunConfig, load_yaml(RECIPE))
    load_before = machine_info()["load_average"]
    result = {
        "benchmark": "latent_vs_mel",
        "date": now(),
        "command": command(),
        "unet": "recipes/digits-mel model section (width 48 x [1, 2, 4]); only in_channels and patch_size change",
        "batch": {"train": BATCH_TRAIN, "sample": BATCH_SAMPLE},
        "target": "a latent U-Net of the same width costs at least 4x fewer FLOPs per step than the mel U-Net",
        "load_average_before": load_before,
    }
    if not args.skip_speed:
        result["unet_speed"] = speed(config, args.rounds)
    if args.autoencoder:
        result["round_trip"] = round_trip(args.autoencoder, args.data, args.count, args.classifier)
    if args.equal_time:  # read from evaluations made elsewhere: it keeps its own provenance
        result["equal_time"] = equal_time(args.equal_time) | {
            "date": result["date"],
            "command": result["command"],
            "machine": machine_info(),
        }
    result["machine"] = machine_info()
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    if args.skip_speed and not args.autoencoder and previous:  # only the comparison: the file's own provenance stays
        result = {"equal_time": result["equal_time"]}
    write_result(previous | result, args.out)  # parts not measured in this run stay as they were
    for row in result.get("unet_speed", []):
        print(
            f"{row['case']:<32} {row['sample_gflop_per_call']:>7} GFLOP/call ({row['flops_fewer_x']}x fewer)  "
            f"train {row['train_s_per_step']} s/step ({row['train_faster_x']}x)  sample {row['sample_ms_per_call']} ms ({row['sample_faster_x']}x)"
        )
    for part in ("round_trip", "equal_time"):
        if part in result:
            print(json.dumps(result[part], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
