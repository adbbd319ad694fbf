"""Speech in many voices, for training vocoders: espeak-ng's voices of many languages, each with
its variants, speaking rates and pitches, reading made-up phrases by that language's rules.

The digits set holds ten English words; a vocoder trained on it alone meets sounds, languages and
voices it never heard as soon as a user brings other speech. This set widens what it hears. The
languages of `HELD_OUT_VOICES` (the unseen voices of benchmarks/vocoder_fidelity.py) are never
rendered, so that benchmark still measures voices no vocoder trained here has heard.

Each clip: a phrase of two to four made-up words (random syllables, so every language's own
letter-to-sound rules decide what is said) -> espeak-ng -> silence trimmed -> resampled -> peak
normalised -> centred in a fixed window (cropped, with a fade, if longer). Splits are disjoint by
language; a row's `label` is its language code and `text` the phrase.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from pathlib import Path

from audiodiff.audio import save_audio
from audiodiff.data.builders.common import (
    BuildError,
    BuildReport,
    collect_rows,
    fit_to_length,
    hash_split,
    parallel_map,
    prepare_out_dir,
    run_tool,
    tool_version,
    write_outputs,
)
from audiodiff.data.builders.digits import check_espeak_build, list_variants, speak

__all__ = ["HELD_OUT_VOICES", "build_speech", "list_languages"]

# The unseen voices of the vocoder benchmark; every language sharing their first subtag is left out.
HELD_OUT_VOICES = ("de", "fr-fr", "es", "it", "pl", "hi", "sv", "pt")
HELD_OUT_WORDS = ("hello", "music", "seventeen", "water", "diffusion")  # that benchmark's words

ONSETS = ("", "b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "y", "z",
          "ch", "sh", "th", "st", "tr", "bl", "kr", "pl", "gr", "sp")  # fmt: skip
VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ou", "ee", "oa", "y")
CODAS = ("", "", "", "n", "m", "r", "l", "s", "t", "k", "nd", "st", "ng", "x")


@dataclasses.dataclass(frozen=True)
class Clip:
    """Everything needed to render one clip."""

    index: int
    language: str
    variant: str | None
    gender: str
    split: str
    rate: int
    pitch: int
    text: str

    @property
    def voice(self) -> str:
        return f"{self.language}+{self.variant}" if self.variant else self.language


def list_languages(espeak: str = "espeak-ng") -> list[str]:
    """The voices of the installed espeak-ng (mbrola ones excluded) by the name `-v` takes (the
    voice file's, e.g. "af"), sorted; without the held-out languages, and without English, whose
    accents and variants are the digits set's (its test voices must stay unheard too)."""
    left_out = {code.split("-")[0] for code in HELD_OUT_VOICES} | {"en"}
    codes = set()
    for line in run_tool(espeak, "--voices").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5 and not fields[4].startswith("mb/") and fields[1].split("-")[0] not in left_out:
            codes.add(fields[4].rsplit("/", 1)[-1])
    if not codes:
        raise BuildError(
            f"{espeak} --voices lists no usable voices; install the full espeak-ng-data (`apt-get install espeak-ng`)"
        )
    return sorted(codes)


def phrase(rng: random.Random) -> str:
    """Two to four made-up words of one or two syllables, none of them a held-out word."""
    words: list[str] = []
    count = rng.randint(2, 4)
    while len(words) < count:
        word = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(rng.randint(1, 2)))
        if word not in HELD_OUT_WORDS:
            words.append(word)
    return " ".join(words)


def plan_clips(
    languages: list[str], variants: list[tuple[str, str]], num_clips: int, seed: int,
    rates: tuple[int, int], pitches: tuple[int, int],
) -> list[Clip]:  # fmt: skip
    """The whole build as data, from the seed alone: languages in turn, a random variant (or the
    language's own male voice), rate, pitch and phrase each; the split is the language's."""
    rng = random.Random(seed)
    voices = [(None, "male"), *variants]
    clips = []
    for index in range(num_clips):
        language = languages[index % len(languages)]
        variant, gender = rng.choice(voices)
        clips.append(
            Clip(
                index=index,
                language=language,
                variant=variant,
                gender=gender,
                split=hash_split(language, seed),
                rate=rng.randint(*rates),
                pitch=rng.randint(*pitches),
                text=phrase(rng),
            )
        )
    return clips


class _Renderer:
    """Renders one planned clip to `out_dir/wavs/` and returns its manifest row (or a skip)."""

    def __init__(self, espeak: str, out_dir: Path, sample_rate: int, seconds: float):
        self.espeak, self.out_dir, self.sample_rate = espeak, out_dir, sample_rate
        self.length = int(round(seconds * sample_rate))

    def __call__(self, clip: Clip) -> dict | tuple[str, str]:
        example = f"#{clip.index} {clip.voice} -s {clip.rate} -p {clip.pitch} {clip.text!r}"
        speech = speak(self.espeak, clip.voice, clip.rate, clip.pitch, clip.text, self.sample_rate, example)
        if isinstance(speech, tuple):
            return speech
        name = f"wavs/{clip.index:05d}_{clip.language}.wav"
        save_audio(
            self.out_dir / name,
            fit_to_length(speech, self.length, int(0.01 * self.sample_rate))[None],
            self.sample_rate,
        )
        return {
            "path": name,
            "label": clip.language,
            "text": clip.text,
            "split": clip.split,
            "voice": clip.voice,
            "gender": clip.gender,
            "rate": clip.rate,
            "pitch": clip.pitch,
            "seconds": round(speech.size / self.sample_rate, 4),
        }


def build_speech(
    out_dir: str | os.PathLike,
    num_clips: int = 3_000,
    seed: int = 0,
    sample_rate: int = 16_000,
    seconds: float = 2.0,
    workers: int | None = None,
    progress: bool = True,
    *,
    rates: tuple[int, int] = (110, 250),
    pitches: tuple[int, int] = (0, 99),
    overwrite: bool = False,
) -> BuildReport:
    """Render `num_clips` phrases in many espeak-ng voices into `out_dir` (wavs/, manifest.jsonl,
    info.json). Splits are disjoint by language; the same seed gives the same rows and audio."""
    espeak = check_espeak_build(num_clips, sample_rate, seconds, rates, pitches)
    started = time.perf_counter()
    out_dir = prepare_out_dir(out_dir, overwrite)
    languages, variants = list_languages(espeak), list_variants(espeak)
    clips = plan_clips(languages, variants, num_clips, seed, rates, pitches)
    report = BuildReport("speech", out_dir, out_dir / "manifest.jsonl")
    renderer = _Renderer(espeak, out_dir, sample_rate, seconds)
    rows = collect_rows(parallel_map(renderer, clips, workers, progress, "speech", total=len(clips)), report)
    report.notes["cropped (phrase longer than the window)"] = sum(row["seconds"] > seconds for row in rows)
    info = {
        "builder": "speech",
        "args": {
            "num_clips": num_clips,
            "seed": seed,
            "sample_rate": sample_rate,
            "seconds": seconds,
            "rates": list(rates),
            "pitches": list(pitches),
        },  # fmt: skip
        "espeak_ng": tool_version(espeak),
        "split_rule": "by language, from a hash of the language code and the seed (80/10/10)",
        "held_out_voices": list(HELD_OUT_VOICES),
        "languages": {
            split: sorted({clip.language for clip in clips if clip.split == split})
            for split in ("train", "valid", "test")
        },
    }
    return write_outputs(report, rows, info, started)
