"""Offline dataset builders (no downloads): spoken digits and many-voiced speech rendered by
espeak-ng, instrument notes rendered by fluidsynth from a General MIDI soundfont, and real
recordings from Debian packages (drums, voices, music).

Each writes `out_dir/wavs/*.wav` (16-bit PCM; mono, but for the music's stereo),
`out_dir/manifest.jsonl` (one row per clip; paths relative to the manifest) and
`out_dir/info.json`, and returns a `BuildReport`.
"""

from audiodiff.data.builders.common import BuildError, BuildReport, MissingToolError
from audiodiff.data.builders.digits import build_digits
from audiodiff.data.builders.drums import build_drums
from audiodiff.data.builders.music import build_music
from audiodiff.data.builders.notes import build_notes
from audiodiff.data.builders.speech import build_speech
from audiodiff.data.builders.voices import build_voices

__all__ = [
    "BuildError", "BuildReport", "MissingToolError", "build_digits", "build_drums", "build_music", "build_notes",
    "build_speech", "build_voices",
]  # fmt: skip
