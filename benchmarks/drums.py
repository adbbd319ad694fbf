"""Drums: how a drums model follows what it is asked, on the held-out kits' own requests.

For each held-out clip (the drums set's test split: kits never trained on) the model is asked for
that clip's class, velocity, decay and brightness; the generated hit is measured with the builder's
own descriptors (`audiodiff.data.builders.real.describe`). Reports the Pearson correlation of asked
against measured decay and brightness, and of asked velocity against the measured peak level; with
`--classifier` (an `audiodiff eval train-classifier` on the drums set) the share of hits classified
as the asked class, beside the same classifier on the real held-out clips; and the median fall from
each hit's loudest 10 ms to its last quarter (a noise floor shows as a small fall). Draws a grid of
generated spectrograms per class beside a real one. Targets (issue 41): class >= 90%, correlations
>= 0.8.

    python benchmarks/drums.py --model runs/drums [--data data/drums] [--count 60] [--classifier DIR]
                               [--vocoder runs/vocoder-44k]   (mel models)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a file: python benchmarks/drums.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.audio import load_audio
from audiodiff.data.builders.real import describe
from audiodiff.pipeline import Pipeline
from benchmarks.machine import command, machine_info, now, write_result

BATCH = 8


def held_out(data: Path, count: int, labels: list[str]) -> list[dict]:
    rows = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
    rows = [row for row in rows if row["split"] == "test" and row["label"] in labels]
    return rows[:: max(1, len(rows) // count)][:count]


def asked(pipe: Pipeline, row: dict) -> dict:
    """The clip's own request: its class and the numbers the model takes, clipped to their ranges."""
    out = {"label": row["label"]}
    for name, (low, high) in pipe.config.conditioning.numbers.items():
        if row.get(name) is not None:
            out[name] = float(np.clip(row[name], low, high))
    return out


def tail_drop_db(clip: torch.Tensor, rate: int) -> float:
    """How far a hit falls from its loudest 10 ms frame to its last quarter (RMS, dB): a noise floor
    shows as a small drop."""
    hop = rate // 100
    mono = clip.mean(0)[: clip.shape[-1] // hop * hop].reshape(-1, hop)
    rms = mono.pow(2).mean(1).sqrt() + 1e-9
    tail = rms[int(len(rms) * 0.75) :]
    return float(20 * torch.log10(rms.max() / tail.pow(2).mean().sqrt()))


def correlation(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return round(float(np.corrcoef(a, b)[0, 1]), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="drums")
    parser.add_argument("--data", default="data/drums")
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--steps", type=int, help="sampling steps (default: the model's)")
    parser.add_argument("--sampler", help="sampler (default: the model's)")
    parser.add_argument("--guidance", type=float, help="guidance scale (default: the model's)")
    parser.add_argument("--classifier", help="a drums evaluation classifier")
    parser.add_argument(
        "--vocoder", help="mel models: a vocoder (run folder or bundled name) instead of the model's own"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--figure", default="docs/examples/drums-grid.png")
    parser.add_argument("--out", default="benchmarks/results/drums.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = Pipeline.from_pretrained(args.model, **({"vocoder": args.vocoder} if args.vocoder else {}))
    data = Path(args.data)
    rows = held_out(data, args.count, pipe.labels)
    requests = [asked(pipe, row) for row in rows]
    generated, settings = [], None
    for start in tqdm(range(0, len(rows), BATCH), desc="generating"):
        chunk = requests[start : start + BATCH]
        conditions = {key: [request[key] for request in chunk] for key in chunk[0] if all(key in r for r in chunk)}
        out = pipe.generate(
            n=len(chunk), seed=start, steps=args.steps, sampler=args.sampler, guidance=args.guidance, **conditions
        )
        generated.extend(out.audio)
        settings = out.settings
    measured = [describe(clip.numpy(), pipe.sample_rate) for clip in generated]
    result = {"clips": len(rows), "correlation": {}}
    for name in ("decay", "brightness"):
        pairs = [(request[name], m[name]) for request, m in zip(requests, measured) if name in request]
        result["correlation"][name] = correlation(*map(list, zip(*pairs))) if pairs else None
    pairs = [(request["velocity"], m["peak_db"]) for request, m in zip(requests, measured) if "velocity" in request]
    result["correlation"]["velocity_vs_peak_db"] = correlation(*map(list, zip(*pairs))) if pairs else None
    real = [load_audio(data / row["path"], pipe.sample_rate, 2)[0] for row in rows]
    result["tail_drop_db_median"] = {
        name: round(float(np.median([tail_drop_db(clip, pipe.sample_rate) for clip in clips])), 1)
        for name, clips in (("generated", generated), ("real_held_out", real))
    }
    if args.classifier:
        from audiodiff.audio import resample
        from audiodiff.metrics import AudioClassifier

        classifier = AudioClassifier.load(args.classifier)
        rate = classifier.mel_spec.sample_rate

        def batch(clips):
            mono = [resample(clip.mean(0, keepdim=True), pipe.sample_rate, rate)[0] for clip in clips]
            length = max(c.shape[-1] for c in mono)
            return torch.stack([torch.nn.functional.pad(c, (0, length - c.shape[-1])) for c in mono])

        labels = [row["label"] for row in rows]
        for name, clips in (("generated", generated), ("real_held_out", real)):
            predicted = classifier.predict(batch(clips))
            result[f"accuracy_{name}"] = round(float(np.mean([p == t for p, t in zip(predicted, labels)])), 3)
    figure(pipe, rows, generated, data, args.figure)
    print(json.dumps(result, indent=1))
    write_result(
        {
            "benchmark": "drums",
            "date": now(),
            "command": command(),
            "machine": machine_info(),
            "model": args.model,
            "vocoder": args.vocoder,
            "training_step": (pipe.info.get("training") or {}).get("step"),
            "settings": settings.to_dict() if settings else None,
            "figure": args.figure,
            "results": result,
        },
        args.out,
    )


def figure(pipe: Pipeline, rows: list[dict], generated: list[torch.Tensor], data: Path, out: str) -> None:
    """One row per class: a real held-out hit, then up to three generated for the same request."""
    from audiodiff.plots import plot_spectrograms

    clips, titles = [], []
    for label in pipe.labels:
        indices = [i for i, row in enumerate(rows) if row["label"] == label][:3]
        if not indices:
            continue
        clips.append(load_audio(data / rows[indices[0]]["path"], pipe.sample_rate, 1)[0][0][: pipe.sample_rate])
        titles.append(f"{label}: real (held-out kit)")
        for i in indices:
            clips.append(generated[i].mean(0))
            titles.append(f"{label}: generated")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    plot_spectrograms(clips, pipe.sample_rate, out, titles)
    print(f"figure: {out}")


if __name__ == "__main__":
    main()
