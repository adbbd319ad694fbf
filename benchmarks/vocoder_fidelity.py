"""Vocoder fidelity: real clips through mel and a vocoder, against the originals, beside Griffin-Lim
(32 iterations, ours and librosa's) in the same run, on four sets at two input levels:

- held-out digits (voices the vocoder never heard: the digits test split),
- held-out notes (the notes test split),
- unseen voices: espeak-ng voices of other languages (not in the digits set) saying English words,
- unseen instruments: General MIDI programs the notes set does not use,

each as rendered and 12 dB quieter (a quarter of the amplitude). Scores per set and level:
log-mel L1 with a floor 60 dB below each clip's peak (`mel_l1_60db`: level-independent, so a quiet
clip is not judged by its noise floor) and with the MelSpec's absolute floor (`mel_l1`, HiFi-GAN's
validation error), multi-resolution STFT distance, the share of voiced frames whose F0 (pYIN) is
within 20 cents of the original's (a target on the note sets, reported on speech); on held-out digits (and notes, with
--notes-classifier) the evaluation classifier's Fréchet distance against the real test split, over
the real floor (train clips, as many per label; left out without --classifier). Writes JSON and prints a table.

    python benchmarks/vocoder_fidelity.py --vocoder vocoder-16k [--vocoder runs/other] [--match-mel 8] \\
        [--classifier runs/classifier-digits] [--per-set 40]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a file: python benchmarks/vocoder_fidelity.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.audio import MelSpec, load_audio
from audiodiff.data.builders.notes import build_notes
from audiodiff.data.builders.speech import HELD_OUT_VOICES, HELD_OUT_WORDS
from audiodiff.metrics import AudioClassifier, feature_statistics, frechet_distance_from_statistics
from audiodiff.metrics.sets import ClipSet, floor_subset, load_clips
from audiodiff.metrics.signal import estimate_f0, mel_l1, multi_resolution_stft_distance
from audiodiff.vocoder import Vocoder
from benchmarks.machine import command, machine_info, now, write_result
from benchmarks.samplers import embed, embed_files

LEVELS_DB = (0.0, -12.0)
UNSEEN_VOICES = HELD_OUT_VOICES  # espeak-ng voices outside the digits set, never rendered by `audiodiff data speech`
UNSEEN_WORDS = HELD_OUT_WORDS
UNSEEN_PROGRAMS = (
    6,
    21,
    22,
    46,
    58,
    66,
    70,
    78,
)  # harpsichord, accordion, harmonica, harp, tuba, tenor sax, bassoon, whistle
UNSEEN_PITCHES = (48, 55, 60, 67, 72)
TARGETS = {"reduction_vs_griffin_lim": 0.30, "frechet_over_floor": 1.5, "f0_within_20_cents": 0.95}


class LibrosaGriffinLim:
    """librosa's mel inversion (NNLS onto the linear spectrum) + its fast Griffin-Lim, 32 iterations."""

    kind = "griffin_lim_librosa"

    def __init__(self, mel_spec: MelSpec, num_iters: int = 32):
        self.mel_spec, self.num_iters = mel_spec, num_iters

    def round_trip(self, audio: torch.Tensor) -> torch.Tensor:
        import librosa

        spec = self.mel_spec
        magnitude = spec.magnitude(audio).double().numpy()  # [1, n_mels, frames], same filterbank as librosa's slaney
        out = librosa.feature.inverse.mel_to_audio(
            magnitude[0],
            sr=spec.sample_rate,
            n_fft=spec.n_fft,
            hop_length=spec.hop_length,
            win_length=spec.win_length,
            power=1.0,
            n_iter=self.num_iters,
            fmin=spec.f_min,
            fmax=spec.f_max,
        )
        out = torch.from_numpy(out).float()[: audio.shape[-1]]
        return torch.nn.functional.pad(out, (0, audio.shape[-1] - out.shape[-1]))[None, None]


def mel_l1_60db(estimate: torch.Tensor, reference: torch.Tensor, mel_spec: MelSpec, floor_db: float = 60.0) -> float:
    """Mean |ln mel_ref − ln mel_est| with both floored `floor_db` below the reference's peak mel bin."""
    ref, est = mel_spec.magnitude(reference), mel_spec.magnitude(estimate)
    floor = ref.amax().clamp_min(1e-12) * 10 ** (-floor_db / 20)
    return float((ref.clamp_min(floor).log() - est.clamp_min(floor).log()).abs().mean())


def _f0(audio: torch.Tensor, rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimate_f0(audio, rate, fmin=30.0, fmax=2000.0)


_REFERENCE_F0: dict = {}  # (path, level) -> the original's F0, computed once for all vocoders


def f0_agreement(estimate: torch.Tensor, reference: torch.Tensor, rate: int, key) -> tuple[int, int]:
    """(voiced frames of the reference whose F0 in the estimate is within 20 cents, voiced frames)."""
    if key not in _REFERENCE_F0:
        _REFERENCE_F0[key] = _f0(reference, rate)
    f0_ref, voiced_ref = _REFERENCE_F0[key]
    f0_est, voiced_est = _f0(estimate, rate)
    frames = min(f0_ref.shape[-1], f0_est.shape[-1])
    f0_ref, voiced_ref, f0_est, voiced_est = (
        f0_ref[..., :frames],
        voiced_ref[..., :frames],
        f0_est[..., :frames],
        voiced_est[..., :frames],
    )
    cents = 1200 * torch.log2(f0_est / f0_ref).abs()
    good = voiced_ref & voiced_est & (cents <= 20)
    return int(good.sum()), int(voiced_ref.sum())


def evenly(clips: ClipSet, count: int) -> ClipSet:
    step = max(1, len(clips) // count)
    return ClipSet(clips.description, clips.paths[::step][:count], clips.labels[::step][:count])


def render_unseen_voices(folder: Path) -> ClipSet:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("espeak-ng is not installed (bash scripts/setup.sh installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for voice in UNSEEN_VOICES:
        for word in UNSEEN_WORDS:
            path = folder / f"{voice}_{word}.wav"
            subprocess.run([espeak, "-v", voice, "-w", str(path), word], check=True, capture_output=True, timeout=60)
            paths.append(path)
    return ClipSet(f"espeak-ng voices {', '.join(UNSEEN_VOICES)}", paths, [None] * len(paths))


def render_unseen_instruments(folder: Path) -> ClipSet:
    build_notes(folder, programs=list(UNSEEN_PROGRAMS), pitches=list(UNSEEN_PITCHES), velocities=[100], progress=False)
    clips = load_clips(str(folder), split=None)
    return ClipSet(f"GM programs {', '.join(map(str, UNSEEN_PROGRAMS))}", clips.paths, clips.labels)


def load_frames(path, spec: MelSpec) -> torch.Tensor:
    """A clip `[1, samples]` at the MelSpec's rate, cut to whole hops (so a round trip matches it)."""
    audio = load_audio(path, spec.sample_rate, 1)[0]
    return audio[:, : audio.shape[-1] // spec.hop_length * spec.hop_length]


def vocode_set(
    vocoder, clips: ClipSet, spec: MelSpec, gain_db: float, pitch: bool = True
) -> tuple[dict, list[torch.Tensor]]:
    """Signal scores of one vocoder on one set at one level, and the vocoded clips (level restored)."""
    gain = 10 ** (gain_db / 20)
    scores = {"mel_l1_60db": [], "mel_l1": [], "mr_stft": []}
    good = voiced = 0
    outputs = []
    for path in tqdm(clips.paths, desc=f"{vocoder.kind} {gain_db:+.0f} dB", leave=False):
        audio = load_frames(path, spec) * gain
        with torch.inference_mode():
            estimate = vocoder.round_trip(audio)[0][..., : audio.shape[-1]]
        scores["mel_l1_60db"].append(mel_l1_60db(estimate, audio, spec))
        scores["mel_l1"].append(mel_l1(estimate, audio, spec).mean().item())
        scores["mr_stft"].append(multi_resolution_stft_distance(estimate, audio).mean().item())
        if pitch:
            g, v = f0_agreement(estimate[0], audio[0], spec.sample_rate, (path, gain_db))
            good, voiced = good + g, voiced + v
        outputs.append(estimate[0] / gain)
    result = {key: round(float(np.mean(values)), 4) for key, values in scores.items()}
    if pitch:
        result["f0_within_20_cents"] = round(good / max(1, voiced), 4)
    return result, outputs


def frechet_over_floor(
    classifier: AudioClassifier, outputs: list[torch.Tensor], clips: ClipSet, data: str, rate: int
) -> dict:
    reference = load_clips(data, split="test")
    stats = feature_statistics(embed_files(classifier, reference), "reference")
    length = max(clip.shape[-1] for clip in outputs)
    batch = torch.stack([torch.nn.functional.pad(clip, (0, length - clip.shape[-1])) for clip in outputs])
    vocoded = frechet_distance_from_statistics(*feature_statistics(embed(classifier, batch, rate), "vocoded"), *stats)
    floor_clips = floor_subset(load_clips(data, split="train"), clips)
    floor = frechet_distance_from_statistics(*feature_statistics(embed_files(classifier, floor_clips), "floor"), *stats)
    return {"vocoded": round(vocoded, 3), "floor": round(floor, 3), "over_floor": round(vocoded / floor, 2)}


def harmonics_figure(
    vocoders: list, names: list[str], path: Path, spec: MelSpec, out: str, max_hz: float = 3000.0
) -> None:
    """Linear-frequency spectrograms (0 to `max_hz`, 2048-point STFT) of one clip and of each
    vocoder's round trip of it: where the harmonics are sharp and where they smear."""
    from audiodiff.plots import _pyplot, _save

    audio = load_frames(path, spec)
    clips = [audio]
    with torch.inference_mode():
        clips += [vocoder.round_trip(audio)[0][..., : audio.shape[-1]] for vocoder in vocoders]
    bins = int(max_hz / (spec.sample_rate / 2048)) + 1
    fig, axes = _pyplot().subplots(1, len(clips), figsize=(2.6 * len(clips), 2.8), sharey=True)
    for ax, clip, title in zip(axes, clips, ["original", *names]):
        power = torch.stft(clip.reshape(-1), 2048, 128, window=torch.hann_window(2048), return_complex=True).abs() ** 2
        db = 10 * torch.log10(power[:bins] + 1e-10)
        ax.imshow(
            db.numpy(),
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=float(db.max()) - 70,
            vmax=float(db.max()),
            extent=(0, clip.shape[-1] / spec.sample_rate, 0, max_hz),
        )
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("seconds")
    axes[0].set_ylabel("Hz")
    fig.suptitle(f"{Path(path).stem}: an unseen voice through mel and back", fontsize=9)
    print(f"figure: {_save(fig, out)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--vocoder", action="append", required=True, help="a vocoder directory or bundled name (repeatable)"
    )
    parser.add_argument(
        "--classifier", help="the digits evaluation classifier (without one, no Fréchet distance is measured)"
    )
    parser.add_argument(
        "--notes-classifier", help="a notes evaluation classifier (Fréchet distance on the notes set too)"
    )
    parser.add_argument("--digits", default="data/digits")
    parser.add_argument("--notes", default="data/notes")
    parser.add_argument(
        "--match-mel",
        type=int,
        action="append",
        default=[],
        help="also score each vocoder with this many passes of mel matching (repeatable)",
    )
    parser.add_argument("--per-set", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/vocoder_fidelity.json")
    parser.add_argument(
        "--figure", help="also draw this PNG: spectrograms of one unseen-voice clip through each vocoder"
    )
    parser.add_argument("--figure-clip", default="de_water", help="the unseen-voice clip (voice_word) the figure shows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*rank-deficient")
    vocoders, names = [], []
    for name in args.vocoder:
        for passes in [None, *args.match_mel]:
            vocoder = Vocoder.from_pretrained(name)
            if passes is not None:
                vocoder.match_mel = passes
            vocoders.append(vocoder)
            names.append(name if passes is None else f"{name} + match_mel {passes}")
    trained = list(names)
    spec = vocoders[0].mel_spec
    vocoders += [Vocoder.from_pretrained("griffin_lim", mel_spec=spec), LibrosaGriffinLim(spec)]
    names += ["griffin_lim", "griffin_lim_librosa"]
    classifiers = {}
    if args.classifier:
        classifiers["digits"] = AudioClassifier.load(args.classifier)
    else:
        print("no --classifier: no Fréchet distance (nor its target) on held-out digits", file=sys.stderr)
    if args.notes_classifier:
        classifiers["notes"] = AudioClassifier.load(args.notes_classifier)
    with tempfile.TemporaryDirectory() as tmp:
        sets = {  # (clips, whether the F0 target applies (notes; on speech F0 is reported only), classifier)
            "held-out digits": (evenly(load_clips(args.digits, split="test"), args.per_set), False, "digits"),
            "held-out notes": (evenly(load_clips(args.notes, split="test"), args.per_set), True, "notes"),
            "unseen voices": (evenly(render_unseen_voices(Path(tmp) / "voices"), args.per_set), False, None),
            "unseen instruments": (
                evenly(render_unseen_instruments(Path(tmp) / "instruments"), args.per_set),
                True,
                None,
            ),
        }
        if args.figure:
            harmonics_figure(vocoders, names, Path(tmp) / "voices" / f"{args.figure_clip}.wav", spec, args.figure)
        rows: dict = {}
        for set_name, (clips, pitch_target, data_name) in sets.items():
            for level in LEVELS_DB:
                key = f"{set_name}, {level:+.0f} dB"
                rows[key] = {"clips": len(clips), "source": clips.description, "f0_target": pitch_target}
                for name, vocoder in zip(names, vocoders):
                    scores, outputs = vocode_set(vocoder, clips, spec, level)
                    classifier = classifiers.get(data_name or "")
                    if classifier is not None and level == 0.0:
                        data = args.digits if data_name == "digits" else args.notes
                        scores["frechet"] = frechet_over_floor(classifier, outputs, clips, data, spec.sample_rate)
                    rows[key][name] = scores
                    tqdm.write(
                        f"{key:<30} {name:<34} "
                        + "  ".join(f"{k} {v['over_floor'] if isinstance(v, dict) else v}" for k, v in scores.items())
                    )
    verdicts = {}
    for name in trained:
        checks = {}
        for key, row in rows.items():
            for metric in ("mel_l1_60db", "mr_stft"):
                best = min(row["griffin_lim"][metric], row["griffin_lim_librosa"][metric])
                reduction = 1 - row[name][metric] / best
                row[name].setdefault("reduction_vs_griffin_lim", {})[metric] = round(reduction, 3)
                checks[f"{key}: {metric} {reduction:.0%} below Griffin-Lim"] = (
                    reduction >= TARGETS["reduction_vs_griffin_lim"]
                )
            if row["f0_target"]:
                share = row[name]["f0_within_20_cents"]
                checks[f"{key}: F0 within 20 cents on {share:.1%} of voiced frames"] = (
                    share >= TARGETS["f0_within_20_cents"]
                )
            if "frechet" in row[name]:
                ratio = row[name]["frechet"]["over_floor"]
                checks[f"{key}: Fréchet {ratio}x the floor"] = ratio <= TARGETS["frechet_over_floor"]
        verdicts[name] = {"met": all(checks.values()), "checks": checks}
        print(f"{name}: {sum(checks.values())}/{len(checks)} targets met")
        for check, met in checks.items():
            if not met:
                print(f"   missed: {check}")
    write_result(
        {
            "benchmark": "vocoder_fidelity",
            "date": now(),
            "command": command(),
            "machine": machine_info(("librosa",)),
            "targets": TARGETS,
            "levels_db": LEVELS_DB,
            "results": rows,
            "verdicts": verdicts,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
