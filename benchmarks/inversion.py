"""Inversion round trip: held-out clips inverted to noise (DDIM, with fixed-point refinement) and
regenerated from it under the same conditions, against the clip; beside `vary(strength=1.0)` (the
noising method at full strength, which keeps nothing of the input) and plain DDIM inversion
(no refinement), in the same run. Scores per step count: log-mel L1 (60 dB floor) and SNR of the
model-space round trip (the mel itself for mel models), and log-mel L1 of the audio.

Target (issue 43): at 32 steps the round trip's log-mel L1 is at most a third of vary(1.0)'s.

    python benchmarks/inversion.py --model notes --data data/notes [--count 12] [--steps 8 16 32]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a file: python benchmarks/inversion.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.audio import load_audio
from audiodiff.pipeline import Pipeline
from benchmarks.machine import command, machine_info, now, write_result
from benchmarks.vocoder_fidelity import mel_l1_60db


def snr_db(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    noise = (estimate - reference).pow(2).sum().clamp_min(1e-12)
    return float(10 * torch.log10(reference.pow(2).sum().clamp_min(1e-12) / noise))


def held_rows(data: Path, count: int, labels: list[str]) -> list[dict]:
    rows = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
    rows = [
        r for r in rows if r.get("split") == "test" and r.get("label") in labels and r.get("gesture", "none") == "none"
    ]
    return rows[:: max(1, len(rows) // count)][:count]


def conditions_of(pipe: Pipeline, row: dict) -> dict:
    return {name: row[name] for name in ("label", "pitch", "velocity") if name in pipe.conditions and name in row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="notes")
    parser.add_argument("--data", default="data/notes")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--steps", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--guidance", type=float, default=1.0, help="the same for inversion and regeneration")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/inversion.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = Pipeline.from_pretrained(args.model, precision="fp32")
    rows = held_rows(Path(args.data), args.count, pipe.labels)
    spec = pipe.mel_spec
    results: dict = {}
    for steps in args.steps:
        scores: dict[str, list] = {key: [] for key in ("refined", "plain", "vary_1")}
        snrs: dict[str, list] = {key: [] for key in ("refined", "plain")}
        for index, row in enumerate(tqdm(rows, desc=f"{steps} steps")):
            audio = load_audio(Path(args.data) / row["path"], pipe.sample_rate, pipe.space.channels)[0]
            audio = audio[..., : pipe.space.whole_frames(audio.shape[-1])]
            conditions = conditions_of(pipe, row)
            seconds = audio.shape[-1] / pipe.sample_rate
            target = pipe.space.encode(audio[None])
            for name, iterations in (("refined", 3), ("plain", 0)):
                noise = pipe.invert(
                    audio, steps, pipe.sample_rate, iterations=iterations, guidance=args.guidance, **conditions
                )
                again = pipe.generate(
                    noise=noise, sampler="ddim", steps=steps, duration=seconds, guidance=args.guidance, **conditions
                )
                scores[name].append(mel_l1_60db(again.audio[0], audio, spec))
                snrs[name].append(snr_db(pipe.space.encode(again.audio)[..., : target.shape[-1]], target))
            varied = pipe.vary(
                audio, 1.0, pipe.sample_rate, steps=steps, seed=index, guidance=args.guidance, **conditions
            )
            scores["vary_1"].append(mel_l1_60db(varied.audio[0][..., : audio.shape[-1]], audio, spec))
        results[str(steps)] = {
            "log_mel_l1_60db": {key: round(float(np.mean(values)), 4) for key, values in scores.items()},
            "model_space_snr_db": {key: round(float(np.mean(values)), 2) for key, values in snrs.items()},
        }
        ratio = results[str(steps)]["log_mel_l1_60db"]["refined"] / results[str(steps)]["log_mel_l1_60db"]["vary_1"]
        results[str(steps)]["refined_over_vary_1"] = round(ratio, 3)
        print(steps, json.dumps(results[str(steps)]))
    write_result(
        {
            "benchmark": "inversion",
            "date": now(),
            "command": command(),
            "machine": machine_info(),
            "model": args.model,
            "clips": len(rows),
            "guidance": args.guidance,
            "results": results,
            "target": "round trip log-mel L1 at 32 steps <= 1/3 of vary(strength=1.0)'s",
        },
        args.out,
    )


if __name__ == "__main__":
    main()
