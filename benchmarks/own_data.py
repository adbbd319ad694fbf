"""Fine-tuning a bundled model against training from scratch on the same folder for the same
wall-clock budget: samples from each (same seeds), a spectrogram grid beside real clips, and a
number for "onset and decay": the envelope's drop from its loudest 23 ms frame to the clip's last
quarter, in dB (a one-shot drops by tens of dB; stationary noise by a few).

    python -m benchmarks.own_data --run runs/percussive-finetune --run runs/percussive-scratch \\
        --real data/percussive [--count 8] [--out benchmarks/results/own_data.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.audio import load_audio
from audiodiff.checkpoint import list_checkpoints
from audiodiff.pipeline import Pipeline
from audiodiff.plots import plot_spectrograms
from benchmarks.machine import RESULTS, command, machine_info, now, write_result

FRAME = 368  # 23 ms at 16 kHz


def decay_db(clip: torch.Tensor) -> float:
    """10 log10(loudest frame energy / mean energy of the last quarter of the clip)."""
    mono = clip.reshape(-1).float()
    frames = mono[: mono.numel() // FRAME * FRAME].reshape(-1, FRAME).pow(2).mean(dim=1) + 1e-10
    tail = frames[-max(1, frames.numel() // 4) :].mean()
    return float(10 * torch.log10(frames.max() / tail))


def real_clips(folder: Path, count: int, sample_rate: int, seconds: float) -> list[torch.Tensor]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3"))
    clips = []
    for path in files[:: max(1, len(files) // count)][:count]:
        audio, _ = load_audio(path, sample_rate=sample_rate, channels=1)
        length = int(seconds * sample_rate)
        audio = torch.nn.functional.pad(audio[..., :length], (0, max(0, length - audio.shape[-1])))
        clips.append(audio / audio.abs().max().clamp_min(1e-6) * 0.9)
    return clips


def run_facts(run: Path) -> dict:
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    training = json.loads((list_checkpoints(run)[-1] / "config.json").read_text())["training"]
    return {
        "steps": training["step"],
        "compute_seconds": training["wall_seconds"],
        "final_loss": next((r["loss"] for r in reversed(log) if "loss" in r), None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, type=Path, help="a run directory (repeatable)")
    parser.add_argument("--real", type=Path, required=True, help="the folder the runs trained on")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "own_data.json")
    parser.add_argument("--figure", type=Path, default=Path("docs/examples/own-data-finetune.png"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows, clips, titles = [], [], []
    for run in args.run:
        pipe = Pipeline.from_pretrained(run)
        out = pipe.generate(n=args.count, seed=0)
        decays = [decay_db(clip) for clip in out.audio]
        rows.append(
            {
                "run": str(run),
                "init_from": pipe.config.train.init_from or None,
                **run_facts(run),
                "decay_db_median": round(statistics.median(decays), 1),
                "decay_db": [round(d, 1) for d in decays],
            }
        )
        name = f"fine-tuned from {pipe.config.train.init_from}" if pipe.config.train.init_from else "from scratch"
        clips += list(out.audio[:4])
        titles += [f"{name}, {rows[-1]['steps']} steps"] * 4
        print(f"{run}: {rows[-1]['steps']} steps, decay median {rows[-1]['decay_db_median']} dB", flush=True)
        seconds, sample_rate = out.audio.shape[-1] / out.sample_rate, out.sample_rate
    real = real_clips(args.real, args.count, sample_rate, seconds)
    real_decays = [decay_db(clip) for clip in real]
    clips += real[:4]
    titles += ["real (training folder)"] * 4
    plot_spectrograms(clips, sample_rate, args.figure, titles)
    write_result(
        {
            "benchmark": "own_data",
            "date": now(),
            "command": command(),
            "machine": machine_info(),
            "real": {"folder": str(args.real), "decay_db_median": round(statistics.median(real_decays), 1)},
            "runs": rows,
            "figure": str(args.figure),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
