"""Spoken digits ("zero".."nine") rendered offline by espeak-ng: many voice variants, English
accents, speaking rates and pitches, with captions built from those facts.

Each clip: espeak-ng (22.05 kHz) -> silence trimmed (energy threshold) -> resampled -> peak
normalised -> centred in a fixed window (cropped, with a fade, if the word is longer).
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import subprocess
import time
from pathlib import Path

import numpy as np

from audiodiff.audio import save_audio
from audiodiff.data.builders.common import (
    SPLIT_FRACTIONS,
    BuildError,
    BuildReport,
    collect_rows,
    fit_to_length,
    parallel_map,
    prepare_out_dir,
    require_tool,
    resample_mono,
    run_tool,
    speech_bounds,
    tool_version,
    write_outputs,
)

__all__ = ["DIGITS", "ACCENTS", "Voice", "build_digits", "check_espeak_build", "list_variants", "list_voices", "speak"]

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# espeak-ng English voices (not the mbrola ones) -> the accent's name in captions.
ACCENTS = {
    "en-us": "American",
    "en-us-nyc": "New York",
    "en-gb": "British",
    "en-gb-x-rp": "Received Pronunciation",
    "en-gb-scotland": "Scottish",
    "en-gb-x-gbclan": "Lancashire",
    "en-gb-x-gbcwmd": "West Midlands",
    "en-029": "Caribbean",
}

# Variants left out, with why.
EXCLUDED_VARIANTS = {
    "whisper": "unvoiced, so the pitch facts in the caption would be false",
    "whisperf": "unvoiced, so the pitch facts in the caption would be false",
    "fast": "espeak-ng's own speed-test voice, marked unstable",
}

SPEEDS = ((145, "slowly"), (205, "at a normal pace"), (10_000, "quickly"))  # rate below edge -> word
PITCH_CLASSES = ((33, "low"), (67, "medium"), (100, "high"))  # pitch below edge -> class
PITCH_WORDS = {"low": "low", "medium": "medium-pitched", "high": "high"}
CAPTIONS = (
    "{label}, spoken {speed} by {a_pitch} {gender} voice with {a_accent} accent",
    "{a_pitch} {gender} voice with {a_accent} accent says {label} {speed}",
    "the word {label}, said {speed} in {a_pitch} {gender} voice ({accent} accent)",
    "{label} in {a_accent} accent: {a_pitch} {gender} voice, speaking {speed}",
)
# "  5  variant  70/F  female1  !v/f1  (en-us 5)": gender, then the variant's file name (used as `+f1`)
VARIANT_LINE = re.compile(r"^\s*\d+\s+variant\s+\S+/([MF-])\s+\S+\s+!v/(.+?)\s*(\(.*\))?\s*$")


@dataclasses.dataclass(frozen=True)
class Voice:
    """One espeak-ng voice: an English accent with an optional variant (`-v en-gb+f2`)."""

    accent_code: str
    variant: str | None
    gender: str

    @property
    def name(self) -> str:
        return f"{self.accent_code}+{self.variant}" if self.variant else self.accent_code


@dataclasses.dataclass(frozen=True)
class Clip:
    """Everything needed to render and describe one clip."""

    index: int
    label: str
    voice: Voice
    split: str
    rate: int
    pitch: int
    caption_template: int


def list_variants(espeak: str = "espeak-ng") -> list[tuple[str, str]]:
    """(variant, gender) of every voiced espeak-ng variant (`+f2`: "f2", "female"), as listed."""
    variants = []
    for line in run_tool(espeak, "--voices=variant").splitlines():
        match = VARIANT_LINE.match(line)
        if not match or match.group(1) not in ("M", "F"):
            continue
        variant = match.group(2)
        if " " in variant or variant in EXCLUDED_VARIANTS:
            continue
        variants.append((variant, "male" if match.group(1) == "M" else "female"))
    return variants


def list_voices(espeak: str = "espeak-ng") -> list[Voice]:
    """All accent x variant voices of the installed espeak-ng, sorted by name.

    Variants come from `espeak-ng --voices=variant` (genders from there), accents from
    `espeak-ng --voices=en` restricted to the non-mbrola voices named in ACCENTS.
    """
    variants = list_variants(espeak)
    listed = run_tool(espeak, "--voices=en").split()
    accents = [code for code in ACCENTS if code in listed]
    if not accents:
        raise BuildError(
            f"{espeak} --voices=en lists none of the English voices {sorted(ACCENTS)}; "
            "install the full espeak-ng-data (`apt-get install espeak-ng`)"
        )
    voices = [Voice(code, None, "male") for code in accents]  # the accent's own voice is male
    voices += [Voice(code, variant, gender) for code in accents for variant, gender in variants]
    return sorted(voices, key=lambda voice: voice.name)


def split_voices(voices: list[Voice], seed: int) -> dict[str, list[Voice]]:
    """Disjoint voice pools per split, ~80/10/10 within every accent (so every split hears
    every accent); a voice is one accent+variant, and lives in exactly one split."""
    rng = random.Random(f"voices:{seed}")
    pools: dict[str, list[Voice]] = {name: [] for name in SPLIT_FRACTIONS}
    for code in sorted({voice.accent_code for voice in voices}):
        group = [voice for voice in voices if voice.accent_code == code]
        rng.shuffle(group)
        held = {name: round(len(group) * fraction) for name, fraction in SPLIT_FRACTIONS.items()}
        start = 0
        for name in ("test", "valid"):
            pools[name] += group[start : start + held[name]]
            start += held[name]
        pools["train"] += group[start:]
    return pools


def _split_sizes(num_clips: int) -> dict[str, int]:
    valid = round(num_clips * SPLIT_FRACTIONS["valid"])
    test = round(num_clips * SPLIT_FRACTIONS["test"])
    return {"train": num_clips - valid - test, "valid": valid, "test": test}


def plan_clips(
    voices: list[Voice], num_clips: int, seed: int, rates: tuple[int, int], pitches: tuple[int, int]
) -> list[Clip]:
    """The whole build as data, from the seed alone: split sizes exactly 80/10/10, labels and
    genders balanced within each split (espeak-ng has far fewer female variants, so each is
    used more often), each gender's voices used in turn, random rate and pitch."""
    rng = random.Random(seed)
    pools = split_voices(voices, seed)
    plan: list[tuple[str, str, Voice]] = []
    num_planned = 0  # labels continue across splits, so the whole set is balanced too
    for split, size in _split_sizes(num_clips).items():
        by_gender: dict[str, list[Voice]] = {}
        for voice in pools[split]:
            by_gender.setdefault(voice.gender, []).append(voice)
        if size and not by_gender:
            raise BuildError(f"no espeak-ng voices left for the {split} split; {len(voices)} voices found")
        labels = [DIGITS[k % len(DIGITS)] for k in range(num_planned, num_planned + size)]
        num_planned += size
        genders = [sorted(by_gender)[k % len(by_gender)] for k in range(size)]
        rng.shuffle(labels)
        rng.shuffle(genders)
        queues: dict[str, list[Voice]] = {gender: [] for gender in by_gender}
        for label, gender in zip(labels, genders):
            if not queues[gender]:
                queues[gender] = list(by_gender[gender])
                rng.shuffle(queues[gender])
            plan.append((split, label, queues[gender].pop()))
    rng.shuffle(plan)
    return [
        Clip(
            index=index,
            label=label,
            voice=voice,
            split=split,
            rate=rng.randint(*rates),
            pitch=rng.randint(*pitches),
            caption_template=rng.randrange(len(CAPTIONS)),
        )
        for index, (split, label, voice) in enumerate(plan)
    ]


def _word_for(value: int, table: tuple[tuple[int, str], ...]) -> str:
    return next(word for edge, word in table if value < edge)


def _article(phrase: str) -> str:
    return ("an " if phrase[0].lower() in "aeiou" else "a ") + phrase


def caption(clip: Clip) -> str:
    """A sentence with every fact of the clip: word, speed, pitch, gender, accent."""
    accent = ACCENTS[clip.voice.accent_code]
    pitch_word = PITCH_WORDS[_word_for(clip.pitch, PITCH_CLASSES)]
    return CAPTIONS[clip.caption_template].format(
        label=clip.label,
        speed=_word_for(clip.rate, SPEEDS),
        a_pitch=_article(pitch_word),
        gender=clip.voice.gender,
        accent=accent,
        a_accent=_article(accent),
    )


def parse_wav_stream(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM wav bytes as written to a pipe (sizes in the header may be bogus) ->
    (float32 mono `[samples]`, rate)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("espeak-ng did not write a wav stream")
    position, rate, channels, bits = 12, 0, 1, 16
    while position + 8 <= len(data):
        chunk = data[position : position + 4]
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        body = position + 8
        if chunk == b"fmt ":
            channels = int.from_bytes(data[body + 2 : body + 4], "little")
            rate = int.from_bytes(data[body + 4 : body + 8], "little")
            bits = int.from_bytes(data[body + 14 : body + 16], "little")
        elif chunk == b"data":
            if bits != 16 or rate <= 0:
                raise ValueError(f"unexpected wav format from espeak-ng: {bits}-bit at {rate} Hz")
            pcm = data[body : body + (len(data) - body) // (2 * channels) * 2 * channels]
            samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels).mean(axis=1)
            return (samples / 32768.0).astype(np.float32), rate
        position = body + size + (size & 1)
    raise ValueError("no audio data in espeak-ng's output")


def speak(
    espeak: str, voice: str, rate: int, pitch: int, text: str, sample_rate: int, example: str
) -> np.ndarray | tuple[str, str]:
    """espeak-ng says `text` -> the speech `[samples]` at `sample_rate`, silence trimmed, peak
    0.95; or (reason, `example` and detail) when it fails or is silent, for `BuildReport.skip`."""
    command = [espeak, "--stdout", "-v", voice, "-s", str(rate), "-p", str(pitch), text]
    try:
        done = subprocess.run(command, capture_output=True, timeout=60)
        if done.returncode != 0:
            return "espeak-ng failed", f"{example}: {done.stderr.decode(errors='replace').strip()[:200]}"
        audio, audio_rate = parse_wav_stream(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        return "espeak-ng failed", f"{example}: {error}"
    bounds = speech_bounds(audio, audio_rate)
    if bounds is None:
        return "silent render", example
    speech = resample_mono(audio[bounds[0] : bounds[1]], audio_rate, sample_rate)
    return speech * (0.95 / max(float(np.abs(speech).max()), 1e-8))


class _Renderer:
    """Renders one planned clip to `out_dir/wavs/` and returns its manifest row (or a skip)."""

    def __init__(self, espeak: str, out_dir: Path, sample_rate: int, seconds: float):
        self.espeak, self.out_dir, self.sample_rate = espeak, out_dir, sample_rate
        self.length = int(round(seconds * sample_rate))

    def __call__(self, clip: Clip) -> dict | tuple[str, str]:
        example = f"#{clip.index} {clip.label} {clip.voice.name} -s {clip.rate} -p {clip.pitch}"
        speech = speak(self.espeak, clip.voice.name, clip.rate, clip.pitch, clip.label, self.sample_rate, example)
        if isinstance(speech, tuple):
            return speech
        fade = int(0.01 * self.sample_rate)
        name = f"wavs/{clip.index:05d}_{clip.label}.wav"
        save_audio(self.out_dir / name, fit_to_length(speech, self.length, fade)[None], self.sample_rate)
        return {
            "path": name,
            "label": clip.label,
            "text": caption(clip),
            "split": clip.split,
            "voice": clip.voice.name,
            "accent": ACCENTS[clip.voice.accent_code],
            "gender": clip.voice.gender,
            "rate": clip.rate,
            "pitch": clip.pitch,
            "speed": _word_for(clip.rate, SPEEDS),
            "pitch_class": _word_for(clip.pitch, PITCH_CLASSES),
            "seconds": round(speech.size / self.sample_rate, 4),
        }


def check_espeak_build(
    num_clips: int, sample_rate: int, seconds: float, rates: tuple[int, int], pitches: tuple[int, int]
) -> str:
    """Refuse impossible arguments of an espeak-ng build; return the espeak-ng program."""
    if num_clips < 1:
        raise ValueError(f"num_clips={num_clips}: need at least 1 clip")
    if not (80 <= rates[0] <= rates[1] <= 450) or not (0 <= pitches[0] <= pitches[1] <= 99):
        raise ValueError(f"rates={rates} must lie in 80..450 wpm and pitches={pitches} in 0..99, low first")
    if seconds <= 0 or sample_rate <= 0:
        raise ValueError(f"seconds={seconds} and sample_rate={sample_rate} must be positive")
    return require_tool("espeak-ng", "espeak-ng")


def build_digits(
    out_dir: str | os.PathLike,
    num_clips: int = 10_000,
    seed: int = 0,
    sample_rate: int = 16_000,
    seconds: float = 1.0,
    workers: int | None = None,
    progress: bool = True,
    *,
    rates: tuple[int, int] = (110, 250),
    pitches: tuple[int, int] = (0, 99),
    overwrite: bool = False,
) -> BuildReport:
    """Render `num_clips` spoken digits into `out_dir` (wavs/, manifest.jsonl, info.json).

    Splits are disjoint by voice (accent+variant); the same seed gives the same rows and
    identical audio. `rates` are espeak-ng words per minute, `pitches` its 0..99 scale; the
    default rates keep nearly every word inside 1 s (longer ones are cropped and counted).
    """
    espeak = check_espeak_build(num_clips, sample_rate, seconds, rates, pitches)
    started = time.perf_counter()
    out_dir = prepare_out_dir(out_dir, overwrite)
    voices = list_voices(espeak)
    clips = plan_clips(voices, num_clips, seed, rates, pitches)
    report = BuildReport("digits", out_dir, out_dir / "manifest.jsonl")
    renderer = _Renderer(espeak, out_dir, sample_rate, seconds)
    rows = collect_rows(parallel_map(renderer, clips, workers, progress, "digits", total=len(clips)), report)
    report.notes["cropped (word longer than the window)"] = sum(row["seconds"] > seconds for row in rows)
    pools = split_voices(voices, seed)
    info = {
        "builder": "digits",
        "args": {
            "num_clips": num_clips,
            "seed": seed,
            "sample_rate": sample_rate,
            "seconds": seconds,
            "rates": list(rates),
            "pitches": list(pitches),
        },
        "espeak_ng": tool_version(espeak),
        "split_rule": "voices (accent+variant) shuffled by seed within each accent, 80/10/10; "
        "clips split exactly 80/10/10 with labels balanced per split",
        "voices": {split: [voice.name for voice in pool] for split, pool in pools.items()},
        "excluded_variants": EXCLUDED_VARIANTS,
    }
    return write_outputs(report, rows, info, started)
