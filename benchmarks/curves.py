"""Does a curve model follow the curves it is given? Four sets, each scored by measuring the
generated audio with the same tracker the data was measured with (`controls.extract`, pYIN):

- pitch: held-out (test-split) held notes asked with `pitch=` and `velocity=` alone (on a curve
  model, `pitch=` is a flat f0): the clip's median F0 within 50 cents of the asked pitch, and the
  family recognised by the evaluation classifier; the baseline model (default: the bundled
  `notes`, without curves) in the same run, and the real notes as the floor.
- contours: the curves measured from held-out gesture clips (bends, vibrato, swells, legato and
  detached phrases) asked of the model with the clip's family; plus named shapes (glide, fall,
  vibrato, steps) with loudness shapes (flat, crescendo, swell, decrescendo) at pitches each family plays.
  The floor: the real gesture clips through the model's MelSpec and vocoder, scored the same way
  (what the vocoder and the tracker leave of a perfect output).
- melody: phrases that no model made (espeak-ng singing "la" at the notes of a melody, five
  voices), their curves taken by `Pipeline.curves_from` and moved by octaves into each
  instrument's range, asked of three instruments.

Frame measures, over the frames the asked F0 is voiced: within 50 cents of it (an unvoiced
output frame is a miss); voicing F1 (asked voiced against output voiced); loudness: the Pearson
r of the output's RMS dB with the asked, over the frames where the asked curve sounds (pooled
over clips, and the median per clip whose asked level moves at least 6 dB); F0 shape: the Pearson
r of the output's F0 in cents with the asked, over the frames both are voiced, the median per clip
whose asked F0 moves at least 50 cents (a flat note lies within 50 cents of a +-50 cent vibrato
throughout; r tells whether it moves with it). Writes JSON and a
figure (asked curves over the output's spectrogram and measured F0: docs/examples/curves.png).

    python -m benchmarks.curves --model runs/notes-curves --classifier runs/classifier-notes --count 48
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import torch
from tqdm.auto import tqdm

from audiodiff import controls
from audiodiff.audio import load_audio
from audiodiff.pipeline import Pipeline
from audiodiff.plots import plot_curves
from audiodiff.request import GenerationRequest
from benchmarks import notes_pitch
from benchmarks.machine import command, machine_info, now, sampling_record, write_result

SHAPE_PAIRS = [("glide", "flat"), ("fall", "crescendo"), ("vibrato", "swell"), ("steps", "decrescendo")]
MELODY = [60, 62, 64, 65, 67, 65, 64, 62]  # a phrase in C; each voice sings a slice of it
VOICES = ["en", "en-us", "en+f3", "en-gb+m3", "en+f5"]
MELODY_LABELS = ["flute", "string", "reed"]
BATCH = 8
SAMPLING_OPTIONS = ("steps", "guidance", "guide", "rest_guidance", "guidance_interval")  # flags of the curve model


def test_rows(folder: Path, held: bool) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    return [row for row in rows if row.get("split") == "test" and (row.get("gesture", "none") == "none") == held]


def thin(rows: list, count: int) -> list:
    return rows[:: max(1, len(rows) // count)][:count]


def generate(
    pipe: Pipeline, items: list[dict], seed: int, desc: str, request: GenerationRequest
) -> tuple[list[np.ndarray], dict]:
    """Each item's conditions (label, pitch, velocity, f0, loudness), generated in batches with the
    sampling options of `request`; and what the calls used (their `out.settings`, less seeds and
    conditions)."""
    clips, used = [], {}
    for start in tqdm(range(0, len(items), BATCH), desc=desc, leave=False):
        chunk = items[start : start + BATCH]
        conditions = {key: [item[key] for item in chunk] for key in chunk[0]}
        out = pipe.generate(n=len(chunk), seed=seed + start, request=request, **conditions)
        clips.extend(clip[0].numpy() for clip in out.audio)
        used = sampling_record(out.settings)
    return clips, used


def follow(
    asked_f0: np.ndarray, asked_loudness: np.ndarray, audio: np.ndarray, sample_rate: int, frame_rate: float
) -> dict:
    """Frame measures of how `audio` follows the asked curves (see the module's docstring)."""
    measured = controls.extract(audio, sample_rate, frame_rate)
    frames = min(len(asked_f0), len(measured["f0"]))
    level, want = measured["loudness"][:frames], asked_loudness[:frames]
    sounding = np.isfinite(want) & (want > controls.LOUDNESS_FLOOR + 1)
    got_pitch, want_pitch = (
        controls.hz_to_midi(measured["f0"][:frames]),
        controls.hz_to_midi(asked_f0[:frames]),
    )  # NaN unvoiced
    both = np.isfinite(got_pitch) & np.isfinite(want_pitch)
    return {
        **controls.f0_agreement(asked_f0, measured["f0"]),
        "level": level[sounding].tolist(), "want": want[sounding].tolist(),
        "cents": (100 * got_pitch[both]).tolist(), "want_cents": (100 * want_pitch[both]).tolist(),
    }  # fmt: skip


def summarise(scores: list[dict]) -> dict:
    voiced = sum(s["voiced"] for s in scores)
    tp, fp, fn = (sum(s[key] for s in scores) for key in ("tp", "fp", "fn"))
    level = np.concatenate([np.asarray(s["level"]) for s in scores]) if scores else np.zeros(0)
    want = np.concatenate([np.asarray(s["want"]) for s in scores]) if scores else np.zeros(0)
    per_clip = [
        float(np.corrcoef(s["level"], s["want"])[0, 1])
        for s in scores
        if len(s["want"]) > 3 and np.ptp(s["want"]) >= 6 and np.std(s["level"]) > 0
    ]
    f0_per_clip = [  # an output that holds one pitch exactly has no r: it scores 0
        float(np.corrcoef(s["cents"], s["want_cents"])[0, 1]) if np.std(s["cents"]) > 0 else 0.0
        for s in scores
        if len(s["want_cents"]) > 3 and np.ptp(s["want_cents"]) >= 50
    ]
    return {
        "clips": len(scores),
        "frames_within_50_cents": round(sum(s["within"] for s in scores) / max(voiced, 1), 3),
        "voicing_f1": round(2 * tp / max(2 * tp + fp + fn, 1), 3),
        "loudness_r_pooled": round(float(np.corrcoef(level, want)[0, 1]), 3) if level.size > 3 else None,
        "loudness_r_median_per_clip": round(float(np.median(per_clip)), 3) if per_clip else None,
        "clips_with_moving_loudness": len(per_clip),
        "f0_r_median_per_clip": round(float(np.median(f0_per_clip)), 3) if f0_per_clip else None,
        "clips_with_moving_f0": len(f0_per_clip),
    }


def family_accuracy(classifier, clips: list[np.ndarray], labels: list[str]) -> float | None:
    return notes_pitch.family_accuracy(classifier, torch_clips(clips), labels) if classifier is not None else None


def torch_clips(clips: list[np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(clip)[None] for clip in clips]


def pitch_set(
    pipe: Pipeline,
    baseline: Pipeline | None,
    rows: list[dict],
    classifier,
    folder: Path,
    request: GenerationRequest,
    baseline_request: GenerationRequest,
) -> dict:
    items = [{"label": row["label"], "pitch": row["pitch"], "velocity": row["velocity"]} for row in rows]
    rate = pipe.sample_rate

    def score(clips):
        return notes_pitch.score(torch_clips(clips), rows, rate, classifier)

    clips, used = generate(pipe, items, 0, "pitch", request)
    result = {"notes": len(rows), "model": score(clips), "sampling": used}
    if baseline is not None:
        clips, used = generate(baseline, items, 0, "pitch (baseline)", baseline_request)
        result["baseline"] = score(clips)
        result["baseline_sampling"] = used
    result["real_floor"] = score([load_audio(folder / row["path"], rate, 1)[0][0].numpy() for row in rows])
    return result


def asked_from_clip(pipe: Pipeline, path: Path) -> dict:
    curves = pipe.curves_from(str(path))
    return {name: np.asarray(curve, dtype=np.float32) for name, curve in curves.items()}


def vocoded(pipe: Pipeline, rows: list[dict], folder: Path) -> list[np.ndarray]:
    """The real clips through the model's MelSpec and vocoder: the floor of what any output of this
    model can score, since every output is heard through the same vocoder and tracker."""
    out = []
    with torch.inference_mode():
        for row in tqdm(rows, desc="vocoded real", leave=False):
            audio = load_audio(folder / row["path"], pipe.sample_rate, 1)[0].to(pipe.device)
            out.append(pipe.vocoder.round_trip(audio)[0, 0].float().cpu().numpy())
    return out


def contour_set(
    pipe: Pipeline,
    rows: list[dict],
    folder: Path,
    count: int,
    classifier,
    examples: list,
    request: GenerationRequest,
) -> dict:
    frames = pipe.mel_spec.num_frames(int(pipe.config.data.segment_seconds * pipe.sample_rate))
    rate, frame_rate = pipe.sample_rate, pipe.curve_frame_rate
    low, high = pipe.config.conditioning.numbers.get("pitch", [36, 84])
    gestures, asked = [], []
    for row in rows:
        curves = asked_from_clip(pipe, folder / row["path"])
        gestures.append({"label": row["label"], **curves})
        asked.append((row.get("gesture"), curves))
    named = []
    labels = sorted({row["label"] for row in rows})
    for index in range(count):
        f0_name, loud_name = SHAPE_PAIRS[index % len(SHAPE_PAIRS)]
        pitch = float(np.clip(48 + (index * 7) % 30, low + 2, high - 4))
        curves = {
            "f0": controls.shape("f0", f0_name, frames, pitch=pitch, frame_rate=frame_rate),
            "loudness": controls.shape("loudness", loud_name, frames, level=-22.0, frame_rate=frame_rate),
        }
        named.append({"label": labels[index % len(labels)], **curves})
        asked.append((f"{f0_name}+{loud_name}", curves))
    clips, used = generate(pipe, gestures + named, 100, "contours", request)
    scores = [
        follow(curves["f0"], curves["loudness"], clip, rate, frame_rate) for (_, curves), clip in zip(asked, clips)
    ]
    floor = [
        follow(curves["f0"], curves["loudness"], clip, rate, frame_rate)
        for (_, curves), clip in zip(asked, vocoded(pipe, rows, folder))
    ]
    by_kind: dict[str, list] = {}
    for (kind, _), score in zip(asked, scores):
        by_kind.setdefault(kind.split("+")[0] if kind else "none", []).append(score)
    examples.extend(
        (kind, curves, clip) for (kind, curves), clip in list(zip(asked, clips))[:: max(1, len(asked) // 4)][:4]
    )
    items = gestures + named
    return {
        "all": summarise(scores),
        "held_out_gestures": summarise(scores[: len(gestures)]),
        "held_out_gestures_vocoded_real": summarise(floor),
        "named_shapes": summarise(scores[len(gestures) :]),
        "by_kind": {kind: summarise(group) for kind, group in sorted(by_kind.items())},
        "held_out_by_kind": {
            kind: summarise([s for (k, _), s in zip(asked, scores) if k == kind])
            for kind in sorted({k for k, _ in asked[: len(gestures)]})
        },
        "by_kind_vocoded_real": {
            kind: summarise([s for (k, _), s in zip(asked, floor) if k == kind])
            for kind in sorted({k for k, _ in asked[: len(floor)]})
        },
        "family_accuracy": family_accuracy(classifier, clips, [item["label"] for item in items]),
        "sampling": used,
    }


def sung_phrases(out_dir: Path, sample_rate: int) -> list[Path]:
    """espeak-ng singing "la" on each note of a slice of MELODY, one file per voice."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("the melody set needs espeak-ng (apt-get install espeak-ng), or pass --no-melody")
    paths = []
    for index, voice in enumerate(VOICES):
        notes = MELODY[index % 3 : index % 3 + 4]
        pieces = []
        for note in notes:
            with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
                pitch = int(np.clip(20 + (note - 60) * 6, 0, 99))  # espeak's -p: 0..99 across about an octave
                subprocess.run(
                    [espeak, "-v", voice, "-p", str(pitch), "-s", "90", "-w", tmp.name, "laa"],
                    check=True,
                    capture_output=True,
                )
                audio, rate = soundfile.read(tmp.name, dtype="float32")
            audio = audio[np.abs(audio) > 1e-3 * np.abs(audio).max()].copy() if audio.size else audio
            pieces.append(audio[: int(0.24 * rate)])
        phrase = np.concatenate(pieces)
        path = out_dir / f"sung-{voice.replace('+', '_')}.wav"
        soundfile.write(path, phrase, rate)
        paths.append(path)
    return paths


def melody_set(pipe: Pipeline, examples: list, request: GenerationRequest) -> dict:
    rate, frame_rate = pipe.sample_rate, pipe.curve_frame_rate
    items, asked = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for path in sung_phrases(Path(tmp), rate):
            measured = pipe.curves_from(str(path))
            f0 = np.asarray(measured["f0"], dtype=np.float32)
            voiced = f0[np.isfinite(f0) & (f0 > 0)]
            for label, target in zip(MELODY_LABELS, (72, 60, 60)):  # flute an octave up, string and reed around C4
                shift = 12 * round((target - float(np.median(controls.hz_to_midi(voiced)))) / 12) if voiced.size else 0
                curves = pipe.curves_from(str(path), transpose=shift)
                curves = {name: np.asarray(curve, dtype=np.float32) for name, curve in curves.items()}
                items.append({"label": label, **curves})
                asked.append((f"sung -> {label}", curves))
    clips, used = generate(pipe, items, 200, "melody", request)
    scores = [
        follow(curves["f0"], curves["loudness"], clip, rate, frame_rate) for (_, curves), clip in zip(asked, clips)
    ]
    examples.extend((kind, curves, clip) for (kind, curves), clip in list(zip(asked, clips))[:2])
    return {"phrases": len(VOICES), "instruments": MELODY_LABELS, **summarise(scores), "sampling": used}


def figure(examples: list, pipe: Pipeline, path: Path) -> None:
    """Asked curves over each example output's spectrogram, with its measured F0 and loudness."""
    rate = pipe.sample_rate
    frame_rate = pipe.curve_frame_rate
    pictures = [
        {"audio": clip, "asked": curves, "measured": controls.extract(clip, rate, frame_rate), "title": kind}
        for kind, curves, clip in examples
    ]
    plot_curves(pictures, rate, path, columns=3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="runs/notes-curves")
    parser.add_argument(
        "--baseline", default="notes", help="a model without curves, asked the same pitches ('none' to skip)"
    )
    parser.add_argument("--classifier")
    parser.add_argument("--data", default="data/notes")
    parser.add_argument("--count", type=int, default=48, help="clips per set (held notes, gesture clips, named shapes)")
    parser.add_argument(
        "--steps",
        type=int,
        help="sampling steps of both models (default: each model's own, which a few-step "
        "student needs; a notes-curves run's config says 25 where the bundled notes samples 16: pass --steps 16 to compare)",
    )
    parser.add_argument(
        "--vocoder", default="vocoder-16k", help="the curve model's vocoder (a run's config may say griffin_lim)"
    )
    parser.add_argument("--guidance", type=float, help="the curve model's guidance scale (default: its own)")
    parser.add_argument(
        "--guide",
        nargs="+",
        help="guide towards these conditions at --guidance where asked, e.g. label (Pipeline guide=)",
    )
    parser.add_argument("--rest-guidance", type=float, help="with --guide: the scale of the other asked conditions")
    parser.add_argument(
        "--guidance-interval",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="noise levels where guidance applies (with --guide: where it exceeds --rest-guidance)",
    )
    parser.add_argument("--no-melody", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/curves.json")
    parser.add_argument("--figure", default="docs/examples/curves.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    folder = Path(args.data)
    pipe = Pipeline.from_pretrained(args.model, vocoder=args.vocoder)
    # the curve model's sampling options, passed with each call (None: the model's own)
    request = GenerationRequest.of(**{name: getattr(args, name) for name in SAMPLING_OPTIONS}).check()
    if not {"f0", "loudness"} <= set(pipe.curves):
        raise SystemExit(f"--model {args.model} takes curves {pipe.curves}; this benchmark needs f0 and loudness")
    baseline = None if args.baseline == "none" else Pipeline.from_pretrained(args.baseline)
    baseline_request = GenerationRequest.of(steps=args.steps)
    from audiodiff.metrics.scoring import load_classifier

    classifier = load_classifier(args.classifier) if args.classifier else None
    low, high = pipe.config.conditioning.numbers["pitch"]
    held = [row for row in thin(test_rows(folder, held=True), args.count) if low <= row["pitch"] <= high]
    gestures = thin(test_rows(folder, held=False), args.count)
    examples: list = []
    result = {
        "benchmark": "curves",
        "date": now(),
        "command": command(),
        "model": args.model,
        "training_step": pipe.info.get("training", {}).get("step"),
        "targets": {
            "pitch": "F0 within 50 cents of the asked pitch= for >= 90% of clips; family recognised in >= 90%",
            "contours": ">= 90% of asked-voiced frames within 50 cents; voicing F1 >= 0.9; loudness Pearson r >= 0.9",
            "melody": ">= 85% of frames within 50 cents on the asked instrument",
        },
        "pitch": pitch_set(pipe, baseline, held, classifier, folder, request, baseline_request),
        "contours": contour_set(pipe, gestures, folder, args.count, classifier, examples, request),
    }
    if not args.no_melody:
        result["melody"] = melody_set(pipe, examples, request)
    # what the curve model's calls used (out.settings, as in each set's "sampling"), not the config
    result["sampling"] = {**result["pitch"]["sampling"], "vocoder": args.vocoder}
    result["machine"] = machine_info()
    write_result(result, args.out)
    figure(examples, pipe, Path(args.figure))
    print(json.dumps({key: result[key] for key in ("pitch", "contours", "melody") if key in result}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
