"""Vocoder fidelity on real speech: real digits test clips passed through mel and a vocoder
(a trained one, and Griffin-Lim as the no-training baseline), scored against the real test split
with the evaluation classifier (accuracy, Fréchet distance in its features) beside the real floor
(real train clips, as many per label), plus mel L1 and multi-resolution STFT distance to the
original clips. This is the vocoder target of the bundled-models issue.

    python benchmarks/vocoder_fidelity.py --vocoder vocoder-16k --classifier runs/classifier-digits \
        [--per-label 20] [--data data/digits]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a file: python benchmarks/vocoder_fidelity.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.audio import load_audio, save_audio
from audiodiff.metrics.evaluation import ClipSet, evaluate, floor_subset, load_clips
from audiodiff.metrics.signal import mel_l1, multi_resolution_stft_distance
from audiodiff.vocoder import Vocoder
from benchmarks.machine import command, machine_info, now, write_result


def chosen_clips(data: str, per_label: int) -> ClipSet:
    clips = load_clips(data, split="test")
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(clips.labels):
        by_label.setdefault(label, []).append(index)
    keep = sorted(i for indices in by_label.values() for i in indices[:: max(1, len(indices) // per_label)][:per_label])
    return ClipSet(f"{clips.description}, {per_label} per label", [clips.paths[i] for i in keep], [clips.labels[i] for i in keep])


@torch.inference_mode()
def resynthesise(vocoder, clips: ClipSet, out: Path) -> dict:
    mel_spec, distances = vocoder.mel_spec, {"mel_l1": [], "mr_stft": []}
    for index, (path, label) in enumerate(tqdm(clips.pairs(), desc=f"vocoding ({vocoder.kind})", leave=False)):
        audio = load_audio(path, mel_spec.sample_rate, 1)[0]
        audio = audio[:, : audio.shape[-1] // mel_spec.hop_length * mel_spec.hop_length]
        estimate = vocoder.round_trip(audio)[0]
        distances["mel_l1"].append(mel_l1(estimate, audio, mel_spec).mean().item())
        distances["mr_stft"].append(multi_resolution_stft_distance(estimate, audio).mean().item())
        save_audio(out / label / f"{index:04d}.wav", estimate, mel_spec.sample_rate)
    return {k: round(sum(v) / len(v), 4) for k, v in distances.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocoder", action="append", required=True, help="a vocoder directory or bundled name (repeatable)")
    parser.add_argument("--classifier", required=True)
    parser.add_argument("--data", default="data/digits")
    parser.add_argument("--per-label", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/vocoder_fidelity.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clips = chosen_clips(args.data, args.per_label)
    reference = load_clips(args.data, split="test")
    floor = floor_subset(load_clips(args.data, split="train"), clips)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in [*args.vocoder, "griffin_lim"]:
            vocoder = Vocoder.from_pretrained(name, mel_spec=None if name != "griffin_lim" else Vocoder.from_pretrained(args.vocoder[0]).mel_spec)
            folder = Path(tmp) / name.replace("/", "_")
            distances = resynthesise(vocoder, clips, folder)
            result = evaluate(load_clips(folder), reference, Path(tmp) / f"eval-{folder.name}", args.classifier, floor=floor)
            scores = {row["score"]: {"vocoded": row["model"], "floor": row["floor"]} for row in result["scores"]}
            fd = scores["frechet_classifier"]
            rows[name] = {"distances_to_original": distances, "scores": scores,
                          "frechet_over_floor": round(fd["vocoded"] / fd["floor"], 2)}
    gl = rows["griffin_lim"]["distances_to_original"]
    for name in args.vocoder:
        mine = rows[name]["distances_to_original"]
        rows[name]["reduction_vs_griffin_lim"] = {k: round(1 - mine[k] / gl[k], 3) for k in mine}
    output = {
        "benchmark": "vocoder_fidelity",
        "date": now(),
        "command": command(),
        "clips": len(clips),
        "targets": "Fréchet distance within 1.5x the floor; mel L1 and MR-STFT at least 50% below Griffin-Lim's",
        "machine": machine_info(),
        "results": rows,
    }
    write_result(output, args.out)
    for name, row in rows.items():
        print(f"{name:>40}  FD {row['scores']['frechet_classifier']['vocoded']:.2f} (floor {row['scores']['frechet_classifier']['floor']:.2f}, "
              f"x{row['frechet_over_floor']})  accuracy {row['scores']['accuracy']['vocoded']:.3f}  "
              f"mel L1 {row['distances_to_original']['mel_l1']:.3f}  MR-STFT {row['distances_to_original']['mr_stft']:.3f}")


if __name__ == "__main__":
    main()
