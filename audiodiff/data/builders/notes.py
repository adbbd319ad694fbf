"""Instrument notes in the NSynth style (one note per clip; program, pitch, velocity),
rendered offline by fluidsynth from a General MIDI soundfont.

Each program is one fluidsynth run over a small MIDI file we write ourselves: every note gets
its own time slot (note-on, note-off `release` seconds before the clip ends, then All Sound
Off), with reverb and chorus off. The render is downmixed, resampled, cut into notes (leading
silence trimmed) and scaled by one gain per program, so velocity and register keep their
relative loudness.

With `gestures`, each program also plays clips whose pitch and loudness move inside the clip, so
a model conditioned on control curves (`audiodiff.controls`) sees curves that vary in time: pitch
bends and glides (the pitch wheel, General MIDI's +-2 semitones), vibrato (the wheel as a 4-7 Hz
sine of 20-100 cents), swells and tremolo (expression, CC11), and short legato or detached
phrases of 2-4 notes.
Half the gestures sound through the whole clip (cut by its end); the others stop between half the
clip and the held notes' note-off (`sounds_seconds` in the manifest), so a model learns from the
f0 curve's voicing when a sound should end instead of always releasing where held notes do.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from audiodiff.audio import save_audio
from audiodiff.data.builders.common import (
    BuildError,
    BuildReport,
    MissingToolError,
    fit_to_length,
    hash_split,
    parallel_map,
    prepare_out_dir,
    require_tool,
    resample_mono,
    stable_fraction,
    tool_version,
    write_outputs,
)

__all__ = [
    "DEFAULT_PROGRAMS",
    "DEFAULT_SOUNDFONT",
    "DEFAULT_VELOCITIES",
    "GESTURES",
    "GM_FAMILIES",
    "GM_PROGRAMS",
    "Slot",
    "build_notes",
    "midi_file",
    "note_name",
]

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
DEFAULT_VELOCITIES = (50, 75, 100, 127)

GM_PROGRAMS = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ",
    "Reed Organ", "Accordion", "Harmonica", "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass",
    "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2",
    "Choir Aahs", "Voice Oohs", "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
    "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)",
    "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)",
    "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet",
    "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)  # fmt: skip

# The 16 GM families of 8 programs each, named like NSynth's families where one matches.
GM_FAMILIES = (
    "keyboard", "mallet", "organ", "guitar", "bass", "string", "ensemble", "brass",
    "reed", "flute", "synth_lead", "synth_pad", "synth_effect", "ethnic", "percussive", "sound_effect",
)  # fmt: skip

# Default programs (two or three per melodic family) -> the MIDI pitches they play, kept
# inside 36..84 and inside the real instrument's range.
DEFAULT_PROGRAMS: dict[int, tuple[int, int]] = {
    0: (36, 84), 4: (36, 84),  # piano, electric piano
    11: (53, 84), 12: (45, 84),  # vibraphone, marimba
    16: (36, 84), 19: (36, 84),  # drawbar organ, church organ
    24: (40, 76), 27: (40, 76), 30: (40, 76),  # nylon, clean electric, distortion guitar
    33: (28, 60), 38: (28, 60),  # finger bass, synth bass
    40: (55, 84), 42: (36, 72),  # violin, cello
    48: (36, 84), 52: (48, 79),  # string ensemble, choir aahs
    56: (55, 82), 57: (40, 72), 61: (36, 79),  # trumpet, trombone, brass section
    65: (49, 80), 68: (58, 84), 71: (50, 84),  # alto sax, oboe, clarinet
    73: (60, 84), 75: (60, 84),  # flute, pan flute
    80: (36, 84), 81: (36, 84),  # square lead, saw lead
    89: (36, 84),  # warm pad
    104: (48, 77), 105: (48, 76),  # sitar, banjo
}  # fmt: skip
OTHER_PROGRAM_RANGE = (36, 84)  # pitches for a program not in DEFAULT_PROGRAMS

DYNAMICS = ((32, "very soft"), (64, "soft"), (88, "moderately loud"), (112, "loud"), (128, "very loud"))
CAPTIONS = (
    "a {dynamic} {family} note, {note}, played on {a_instrument}",
    "{a_instrument} ({family}) playing {note}, {dynamic}",
    "{note} on {a_instrument}: a {dynamic} {family} note",
)
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# fluidsynth renders at 48 kHz (its interpolation does not band-limit), then we resample. It
# starts notes on 64-sample block edges; at 48 kHz every 4 ms is one (192 samples), so with
# all event times on a 4 ms grid each note renders the same wherever it sits in the file.
RENDER_RATE = 48_000
GRID_MS = 4
LEAD_MS = 20  # each note starts this far into its slot
MARGIN_MS = 248  # slot length beyond `seconds`: room for the onset trim
SILENT_PEAK = 1e-4  # a note whose raw peak stays below this (about -80 dBFS) is skipped as silent


def note_name(pitch: int) -> str:
    """MIDI number -> scientific pitch name (60 -> 'C4')."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def _dynamic(velocity: int) -> str:
    return next(word for edge, word in DYNAMICS if velocity < edge)


def caption(program: int, pitch: int, velocity: int, template: int) -> str:
    """A sentence with the facts of a note: dynamic, family, pitch name, instrument."""
    instrument = GM_PROGRAMS[program].lower()
    return CAPTIONS[template].format(
        dynamic=_dynamic(velocity),
        family=GM_FAMILIES[program // 8].replace("_", " "),
        note=note_name(pitch),
        a_instrument=("an " if instrument[0] in "aeiou" else "a ") + instrument,
    )


# --------------------------------------------------------------------------------------------
# MIDI


def _varlen(value: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def _on_grid(milliseconds: float) -> int:
    return int(round(milliseconds / GRID_MS)) * GRID_MS


GESTURES = ("bend", "vibrato", "swell", "legato", "detached")
GESTURE_WORDS = {
    "bend": "with a pitch bend", "vibrato": "with vibrato", "swell": "with a changing loudness",
    "legato": "a legato phrase", "detached": "a phrase of detached notes",
}  # fmt: skip
CONTROL_MS = 20  # pitch-wheel and expression messages this often (on the 4 ms grid)
BEND_RANGE = 2.0  # semitones at full pitch-wheel deflection (the General MIDI default)


def _wheel(semitones: float) -> bytes:
    value = int(np.clip(round(8192 + semitones / BEND_RANGE * 8191), 0, 16383))
    return bytes([0xE0, value & 0x7F, value >> 7])


def _expression(level: float) -> bytes:
    return bytes([0xB0, 11, int(np.clip(round(level), 0, 127))])


@dataclasses.dataclass(frozen=True)
class Slot:
    """What one clip plays: a held note (`kind="note"`), or a gesture (one of GESTURES) drawn
    from `seed`: the wheel, expression and notes it plays all follow from (kind, pitch, velocity,
    seed), so a build is reproducible and a slot renders the same wherever it sits."""

    pitch: int
    velocity: int
    kind: str = "note"
    seed: int = 0
    index: int = 0  # the gesture's number within its program (names the file)

    @property
    def key(self) -> str:
        return f"{self.pitch}:{self.velocity}" if self.kind == "note" else f"{self.kind}:{self.index}"

    def hold(self, hold_ms: int, clip_ms: int) -> int:
        """How long this slot sounds: a held note `hold_ms` (then its release); a gesture, drawn
        from its seed, half the time through the whole clip (cut by its end, not released) and
        otherwise from half the clip to `hold_ms`, so the curves teach when a sound stops."""
        if self.kind == "note":
            return hold_ms
        rng = np.random.default_rng([self.seed, 1])  # its own stream: the gesture's other draws stay as they were
        if rng.random() < 0.5:
            return clip_ms
        return _on_grid(rng.uniform(min(0.5 * clip_ms, hold_ms), hold_ms))

    def phrase(self, hold_ms: int) -> list[tuple[int, int, int]]:
        """The notes `[(start ms, end ms, pitch)]` within the hold."""
        if self.kind not in ("legato", "detached"):
            return [(0, hold_ms, self.pitch)]
        rng = np.random.default_rng(self.seed)
        count = int(rng.integers(2, 5))
        pitches = [self.pitch]
        for _ in range(count - 1):
            pitches.append(pitches[-1] + int(rng.choice([-1, 1]) * rng.integers(1, 6)))
        share = hold_ms / count
        length = share if self.kind == "legato" else share * rng.uniform(0.5, 0.75)
        return [(_on_grid(k * share), _on_grid(k * share + length), pitch) for k, pitch in enumerate(pitches)]

    def controls(self, hold_ms: int) -> list[tuple[int, bytes]]:
        """Pitch-wheel and expression messages `[(ms, message)]` within the hold."""
        rng = np.random.default_rng(self.seed)
        times = np.arange(0, hold_ms + 1, CONTROL_MS)
        t = times / 1000.0
        if self.kind == "bend":
            depth = rng.choice([-1, 1]) * rng.uniform(0.5, BEND_RANGE)
            start, end = rng.uniform(0.0, 0.3), rng.uniform(0.4, hold_ms / 1000)
            ramp = np.clip((t - start) / (end - start), 0, 1)
            curve = depth * (1 - ramp) if rng.random() < 0.3 else depth * ramp  # a scoop into the note, or a glide away
            return [(int(ms), _wheel(value)) for ms, value in zip(times, curve)]
        if self.kind == "vibrato":
            rate, cents, delay = rng.uniform(4, 7), rng.uniform(20, 100), rng.uniform(0, 0.25)
            onset = np.clip((t - delay) / 0.1, 0, 1)
            curve = onset * cents / 100 * np.sin(2 * np.pi * rate * np.maximum(t - delay, 0))
            return [(int(ms), _wheel(value)) for ms, value in zip(times, curve)]
        if self.kind == "swell":
            low, shape = rng.uniform(15, 60), rng.choice(["crescendo", "decrescendo", "swell", "tremolo"])
            u = t / t[-1]
            ramps = {
                "crescendo": u, "decrescendo": 1 - u, "swell": np.sin(np.pi * u),
                "tremolo": 0.5 + 0.5 * np.cos(2 * np.pi * rng.uniform(3, 7) * t),
            }  # fmt: skip
            curve = low + (127 - low) * ramps[str(shape)]
            return [(int(ms), _expression(value)) for ms, value in zip(times, curve)]
        return []

    def events(self, start_ms: int, hold_ms: int) -> list[tuple[int, bytes]]:
        """This slot's MIDI events, the note(s) starting at `start_ms` and held `hold_ms`."""
        controls = self.controls(hold_ms)
        # the wheel and expression are set before the first note-on, so it starts where the gesture does
        first = [message for ms, message in controls if ms == 0]
        events = [(start_ms - 2 * GRID_MS, message) for message in first]
        events += [(start_ms + ms, message) for ms, message in controls if ms > 0]
        for begin, end, pitch in self.phrase(hold_ms):
            events += [
                (start_ms + begin, bytes([0x90, pitch, self.velocity])),
                (start_ms + end, bytes([0x80, pitch, 0])),
            ]
        return events


def midi_file(program: int, notes: list, seconds: float, release: float) -> bytes:
    """A format-0 standard MIDI file playing `notes` (`(pitch, velocity)` pairs or `Slot`s) one per
    slot on channel 1 with `program`; 1 tick = 1 ms (tempo 1 s per quarter, 1000 ticks per quarter).
    Every slot starts with the pitch wheel centred and full expression, and ends with All Sound Off."""
    slot_ms = _on_grid(seconds * 1000 + MARGIN_MS)
    hold_ms = _on_grid((seconds - release) * 1000)
    sound_off_ms = _on_grid(seconds * 1000 + MARGIN_MS / 2)
    tempo = b"\xff\x51\x03" + (1_000_000).to_bytes(3, "big")  # microseconds per quarter note
    events: list[tuple[int, bytes]] = [(0, tempo), (0, bytes([0xC0, program]))]
    for k, slot in enumerate(notes):
        slot = slot if isinstance(slot, Slot) else Slot(*slot)
        start = k * slot_ms + LEAD_MS
        if slot.kind != "note":
            events += [(k * slot_ms, _wheel(0.0)), (k * slot_ms, _expression(127))]
        events += slot.events(start, slot.hold(hold_ms, _on_grid(seconds * 1000)))
        events.append((start + sound_off_ms, bytes([0xB0, 120, 0])))  # All Sound Off: nothing rings into the next slot
        if slot.kind != "note":
            events += [(start + sound_off_ms, _wheel(0.0)), (start + sound_off_ms, _expression(127))]
    events.append((len(notes) * slot_ms, b"\xff\x2f\x00"))  # end of track
    track, now = b"", 0
    for when, message in sorted(events, key=lambda event: event[0]):  # stable: same-time order kept
        track += _varlen(when - now) + message
        now = when
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1000)
    return header + b"MTrk" + struct.pack(">I", len(track)) + track


# --------------------------------------------------------------------------------------------
# Rendering


@dataclasses.dataclass(frozen=True)
class ProgramJob:
    """One fluidsynth run: a program and its slots (held notes, then gestures)."""

    program: int
    notes: tuple[Slot, ...]


@dataclasses.dataclass(frozen=True)
class _ProgramRenderer:
    """Renders one program's notes to wavs; returns (manifest rows, skips [(reason, example)])."""

    fluidsynth: str
    soundfont: Path
    out_dir: Path
    sample_rate: int
    seconds: float
    release: float
    seed: int

    def render(self, job: ProgramJob) -> np.ndarray:
        """fluidsynth's mono render of the whole job at `sample_rate`, `[samples]`."""
        with tempfile.TemporaryDirectory(prefix="audiodiff-notes-") as folder:
            midi, wav = Path(folder) / "notes.mid", Path(folder) / "notes.wav"
            midi.write_bytes(midi_file(job.program, list(job.notes), self.seconds, self.release))
            command = [
                self.fluidsynth, "-ni", "-q", "-R", "0", "-C", "0", "-g", "1.0",
                "-r", str(RENDER_RATE), "-T", "wav", "-O", "float",
                "-F", str(wav), str(self.soundfont), str(midi),
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, timeout=60 + 2 * len(job.notes))
            if done.returncode != 0 or not wav.is_file():
                message = (done.stderr or done.stdout).strip()[:300]
                raise RuntimeError(message or f"exit status {done.returncode}")
            audio, rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
        return resample_mono(audio.mean(axis=1), rate, self.sample_rate)

    def __call__(self, job: ProgramJob) -> tuple[list[dict], list[tuple[str, str]]]:
        name = GM_PROGRAMS[job.program]
        try:
            audio = self.render(job)
        except (OSError, subprocess.SubprocessError, RuntimeError) as error:  # LibsndfileError is a RuntimeError
            failed = [f"{name} {self.describe(slot)}: {error}" for slot in job.notes]
            return [], [("fluidsynth failed", example) for example in failed]
        length = int(round(self.seconds * self.sample_rate))
        slot_samples = _on_grid(self.seconds * 1000 + MARGIN_MS) * self.sample_rate / 1000
        clips, skips = {}, []
        for k, slot in enumerate(job.notes):
            start = max(0, int(k * slot_samples + (LEAD_MS - 10) * self.sample_rate / 1000))
            segment = audio[start : start + int(slot_samples - LEAD_MS * self.sample_rate / 1000)]
            peak = float(np.abs(segment).max()) if segment.size else 0.0
            if peak < SILENT_PEAK:
                skips.append(("silent render", f"{name} {self.describe(slot)}"))
                continue
            onset = int(np.argmax(np.abs(segment) >= peak * 1e-3))  # leading silence: below -60 dB
            fade = int(0.01 * self.sample_rate)
            clips[slot] = fit_to_length(segment[onset:], length, fade, center=False)
        if not clips:
            return [], skips
        gain = 0.95 / max(float(np.abs(clip).max()) for clip in clips.values())  # one gain per program
        rows = []
        for slot, clip in clips.items():
            family = GM_FAMILIES[job.program // 8]
            if slot.kind == "note":
                path = f"wavs/{family}_{job.program:03d}-{slot.pitch:03d}-{slot.velocity:03d}.wav"
            else:
                path = f"wavs/{family}_{job.program:03d}-{slot.kind}-{slot.index:03d}.wav"
            save_audio(self.out_dir / path, (clip * gain)[None], self.sample_rate)
            rows.append(self.row(path, job.program, slot))
        return rows, skips

    @staticmethod
    def describe(slot: Slot) -> str:
        if slot.kind == "note":
            return f"pitch {slot.pitch} velocity {slot.velocity}"
        return f"{slot.kind} {slot.index} (pitch {slot.pitch} velocity {slot.velocity})"

    def row(self, path: str, program: int, slot: Slot) -> dict:
        pitch, velocity = slot.pitch, slot.velocity
        key = f"{program}:{pitch}:{velocity}" if slot.kind == "note" else f"{program}:{slot.kind}:{slot.index}"
        template = int(stable_fraction(f"caption:{key}", self.seed) * len(CAPTIONS))
        text = caption(program, pitch, velocity, template)
        return {
            "path": path,
            "label": GM_FAMILIES[program // 8],
            "instrument": GM_PROGRAMS[program],
            "program": program,
            "family": GM_FAMILIES[program // 8],
            "pitch": pitch,
            "note": note_name(pitch),
            "velocity": velocity,
            "dynamic": _dynamic(velocity),
            "gesture": "none" if slot.kind == "note" else slot.kind,
            "sounds_seconds": slot.hold(_on_grid((self.seconds - self.release) * 1000), _on_grid(self.seconds * 1000))
            / 1000,
            "text": text if slot.kind == "note" else f"{text}, {GESTURE_WORDS[slot.kind]}",
            "split": hash_split(key, self.seed),
        }


# --------------------------------------------------------------------------------------------
# Builder


def _check_numbers(name: str, values: list, low: int, high: int) -> list[int]:
    """`values` as ints, or a ValueError naming the bad ones (numpy integers are fine)."""
    bad = [value for value in values if not isinstance(value, (int, np.integer)) or not low <= value <= high]
    if bad or not values:
        raise ValueError(f"{name}={values}: need a non-empty list of integers in {low}..{high} (bad: {bad})")
    return [int(value) for value in values]


def _check_soundfont(soundfont: str | os.PathLike | None) -> Path:
    path = Path(soundfont or DEFAULT_SOUNDFONT)
    if not path.is_file():
        hint = "`apt-get install fluid-soundfont-gm`" if soundfont is None else "check the path"
        raise MissingToolError(f"soundfont {path} not found; install it with {hint} or pass soundfont=PATH.sf2")
    with open(path, "rb") as handle:
        head = handle.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise BuildError(f"{path}: not a SoundFont 2 file (no RIFF/sfbk header); pass a .sf2 soundfont")
    return path


def _gesture_seed(seed: int, program: int, index: int) -> int:
    digest = hashlib.sha256(f"gesture:{seed}:{program}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def plan_jobs(
    programs: list[int], pitches: list[int] | None, velocities: list[int], gestures: int = 0, seed: int = 0
) -> list[ProgramJob]:
    """One job per program; without explicit `pitches`, each program plays its DEFAULT_PROGRAMS
    range. `gestures` more slots per program cycle through GESTURES, each starting on a pitch
    and velocity drawn from the program's (phrases keep 5 semitones of room inside the range)."""
    jobs = []
    for program in programs:
        low, high = DEFAULT_PROGRAMS.get(program, OTHER_PROGRAM_RANGE)
        program_pitches = list(pitches or range(low, high + 1))
        slots = [Slot(pitch, velocity) for pitch in program_pitches for velocity in velocities]
        inner = [pitch for pitch in program_pitches if low + 5 <= pitch <= high - 5] or program_pitches
        for index in range(gestures):
            gesture_seed = _gesture_seed(seed, program, index)
            rng = np.random.default_rng(gesture_seed)
            pitch, velocity = int(rng.choice(inner)), int(rng.choice(velocities))
            slots.append(Slot(pitch, velocity, GESTURES[index % len(GESTURES)], gesture_seed, index))
        jobs.append(ProgramJob(program, tuple(slots)))
    return jobs


def build_notes(
    out_dir: str | os.PathLike,
    programs: list[int] | None = None,
    pitches: list[int] | None = None,
    velocities: list[int] | None = None,
    seconds: float = 1.0,
    release: float = 0.25,
    seed: int = 0,
    soundfont: str | os.PathLike | None = None,
    sample_rate: int = 16_000,
    workers: int | None = None,
    progress: bool = True,
    *,
    gestures: int = 0,
    overwrite: bool = False,
) -> BuildReport:
    """Render one clip per (program, pitch, velocity) into `out_dir` (wavs/, manifest.jsonl,
    info.json). Notes are held for `seconds - release`, then released.

    Defaults: DEFAULT_PROGRAMS, each over its own pitch range (explicit `pitches` apply to
    every program), velocities 50/75/100/127, FluidR3_GM. Splits: a hash of (seed, program,
    pitch, velocity), 80/10/10, so each instrument has held-out notes and a note's split never
    depends on what else is built.

    `gestures`: this many clips per program whose pitch or loudness moves (bends, vibrato, swells,
    legato and detached phrases; see GESTURES), split by a hash of (seed, program, gesture, index).
    """
    programs = _check_numbers("programs", list(DEFAULT_PROGRAMS if programs is None else programs), 0, 127)
    velocities = _check_numbers("velocities", list(velocities or DEFAULT_VELOCITIES), 1, 127)
    if pitches is not None:
        pitches = _check_numbers("pitches", list(pitches), 0, 127)
    if not 0 <= release < seconds:
        raise ValueError(f"release={release}: need 0 <= release < seconds={seconds}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate={sample_rate} must be positive")
    if not isinstance(gestures, (int, np.integer)) or gestures < 0:
        raise ValueError(f"gestures={gestures!r}: give a count of gesture clips per program, 0 or more")
    fluidsynth = require_tool("fluidsynth", "fluidsynth")
    soundfont = _check_soundfont(soundfont)
    started = time.perf_counter()
    out_dir = prepare_out_dir(out_dir, overwrite)
    jobs = plan_jobs(programs, pitches, velocities, int(gestures), seed)
    renderer = _ProgramRenderer(fluidsynth, soundfont, out_dir, sample_rate, seconds, release, seed)
    report = BuildReport("notes", out_dir, out_dir / "manifest.jsonl")
    rows: list[dict] = []
    total = sum(len(job.notes) for job in jobs)
    results = parallel_map(renderer, jobs, workers, progress, "notes", total, lambda job: len(job.notes))
    for job_rows, skips in results:
        rows += job_rows
        for reason, example in skips:
            report.skip(reason, example)
    info = {
        "builder": "notes",
        "args": {
            "programs": programs,
            "pitches": pitches,
            "velocities": velocities,
            "seconds": seconds,
            "release": release,
            "seed": seed,
            "gestures": int(gestures),
            "soundfont": str(soundfont),
            "sample_rate": sample_rate,
        },
        "fluidsynth": tool_version(fluidsynth),
        "split_rule": "sha256(f'{seed}:{program}:{pitch}:{velocity}') as a fraction in [0, 1): "
        "<0.8 train, <0.9 valid, else test; gestures hash f'{seed}:{program}:{gesture}:{index}'",
        "render": f"fluidsynth at {RENDER_RATE} Hz, reverb and chorus off, downmixed to mono; "
        "leading silence (-60 dB) trimmed; one peak gain (0.95) per program",
    }
    return write_outputs(report, rows, info, started)
