"""Where a source-filter vocoder's F0 misses come from: real notes through mel and the vocoder with
the harmonic source driven two ways, scored as `benchmarks/vocoder_fidelity.py` scores F0 (the share
of the original's voiced pYIN frames whose F0 in the output is within 20 cents):

- `head`: the F0 the vocoder's pitch head reads from the mel (what a user gets),
- `reference`: the original clip's own pYIN F0 (30 to 2000 Hz, at the mel's frame rate) and its
  voicing, with everything else the network predicts unchanged.

If the reference F0 does no better than the head, the misses are not the head's: they come from
what the filter and the free spectrum make of the source, or from pYIN reading the two clips
differently. Also reports, per clip, how often the head's F0 is within 20 and 50 cents of the
reference and how often an octave or more away, and lists the clips with the most missed frames.

    python benchmarks/vocoder_f0.py [--vocoder vocoder-16k] [--notes data/notes] [--per-set 30]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.metrics.sets import load_clips
from audiodiff.metrics.signal import estimate_f0
from audiodiff.vocoder import Vocoder
from benchmarks.machine import command, machine_info, now, write_result
from benchmarks.vocoder_fidelity import evenly, f0_agreement, load_frames


def reference_f0(audio: torch.Tensor, frames: int, hop: int, rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """pYIN's F0 (0 where unvoiced) and voicing of `audio` `[1, samples]` at the mel's frames `[1, frames]`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f0, voiced = estimate_f0(audio, rate, fmin=30.0, fmax=2000.0, hop_length=hop)
    f0 = torch.nan_to_num(f0, nan=0.0) * voiced
    fit = lambda x: F.pad(x.float(), (0, max(0, frames - x.shape[-1])))[..., :frames]  # noqa: E731
    return fit(f0), fit(voiced)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocoder", default="vocoder-16k", help="a source-filter vocoder directory or bundled name")
    parser.add_argument("--notes", default="data/notes")
    parser.add_argument("--per-set", type=int, default=30, help="held-out notes, spread evenly over the test split")
    parser.add_argument("--worst", type=int, default=6, help="list this many clips with the most missed frames")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/vocoder_f0.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vocoder = Vocoder.from_pretrained(args.vocoder)
    generator, spec = vocoder.generator, vocoder.mel_spec
    if not hasattr(generator, "pitch_head"):
        raise SystemExit(
            f"--vocoder {args.vocoder}: a {generator.name} generator has no F0 source; pass a source_filter vocoder"
        )
    clips = evenly(load_clips(args.notes, split="test"), args.per_set)
    totals = {"head": [0, 0], "reference": [0, 0]}
    rows = []
    for path in tqdm(clips.paths, desc="notes"):
        audio = load_frames(path, spec)
        with torch.inference_mode():
            parts = generator.parts(spec(audio))
            head_f0, head_voicing = generator.pitch(parts)
            ref_f0, ref_voicing = reference_f0(audio, head_f0.shape[-1], spec.hop_length, spec.sample_rate)
            row = {"clip": Path(path).name}
            for name, (f0, voicing) in {"head": (head_f0, head_voicing), "reference": (ref_f0, ref_voicing)}.items():
                out = generator.render(parts, f0, voicing)[0][..., : audio.shape[-1]]
                good, voiced = f0_agreement(out[0], audio[0], spec.sample_rate, path)
                totals[name][0] += good
                totals[name][1] += voiced
                row[name] = {"within_20_cents": good, "voiced_frames": voiced}
        both = (ref_f0 > 0) & (head_f0 > 0)
        cents = (1200 * torch.log2(head_f0[both] / ref_f0[both])).abs()
        row["head_vs_reference"] = {
            "frames": int(both.sum()),
            "within_20_cents": round(float((cents <= 20).float().mean()), 3) if len(cents) else None,
            "within_50_cents": round(float((cents <= 50).float().mean()), 3) if len(cents) else None,
            "octave_or_more": round(float((cents >= 600).float().mean()), 3) if len(cents) else None,
            "reference_median_hz": round(float(ref_f0[ref_f0 > 0].median()), 1) if bool((ref_f0 > 0).any()) else None,
        }
        rows.append(row)
    shares = {name: round(good / max(1, voiced), 4) for name, (good, voiced) in totals.items()}
    worst = sorted(rows, key=lambda r: r["head"]["within_20_cents"] - r["head"]["voiced_frames"])[: args.worst]
    print(
        f"F0 within 20 cents on {totals['head'][1]} voiced frames of {len(rows)} held-out notes: "
        f"head {shares['head']:.1%}, reference F0 driving the source {shares['reference']:.1%}"
    )
    for row in worst:
        print(
            f"  {row['clip']:<32} head {row['head']['within_20_cents']}/{row['head']['voiced_frames']}  "
            f"reference {row['reference']['within_20_cents']}/{row['reference']['voiced_frames']}  head vs pYIN {row['head_vs_reference']}"
        )
    write_result(
        {
            "benchmark": "vocoder_f0",
            "date": now(),
            "command": command(),
            "machine": machine_info(("librosa",)),
            "vocoder": args.vocoder,
            "clips": len(rows),
            "within_20_cents": shares,
            "frames": totals,
            "worst": [row["clip"] for row in worst],
            "per_clip": rows,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
